"""Telemetry against the real server: stored once, duplicates acknowledged, and every bad
report refused with a 4xx naming the problem and nothing stored."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import create_token, hash_token
from tests.exchange.conftest import Exchange
from tests.exchange.server import (
    OTHER_SITE,
    SITE,
    SITE_TYPES,
    START,
    counts,
    query,
    raw_json,
    stored_forecasts,
    telemetry,
)

URL = f"/v1/sites/{SITE}/telemetry"
JSON = {"content-type": "application/json"}


def _metric(exchange: Exchange, name: str) -> float:
    text = exchange.client().get("/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match[1])


def test_a_report_is_stored_once_and_acknowledged_twice(exchange: Exchange) -> None:
    client = exchange.client("site")
    body = telemetry("dup-1", hours=24)
    before = counts(exchange.db_url)
    stored_before = _metric(exchange, "gridbridge_telemetry_reports_total")
    duplicates_before = _metric(exchange, "gridbridge_telemetry_duplicates_total")

    first = client.post(URL, json=body)
    assert first.status_code == 201 and first.json() == {"report_id": "dup-1",
                                                         "status": "stored"}
    again = client.post(URL, json=body)
    # Same content written differently (key order, stamp spelling) is the same report.
    respelled = raw_json({k: body[k] for k in reversed(list(body))}).replace(
        b"23:05:00Z", b"23:05:00+00:00")
    third = client.post(URL, content=respelled, headers=JSON)
    for answer in (again, third):
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"report_id": "dup-1", "status": "duplicate"}

    after = counts(exchange.db_url)
    assert after["telemetry_reports"] == before["telemetry_reports"] + 1
    rows = query(exchange.db_url, sa.select(t.telemetry_reports)
                 .where(t.telemetry_reports.c.report_id == "dup-1"))
    assert len(rows) == 1
    row = rows[0]._mapping
    assert (row["site_id"], row["zone"], row["signal"], row["provider"], row["hours"]) == (
        SITE, "KR", "direct", "csv-replay", 24)
    assert (row["first_hour_utc"], row["end_hour_utc"]) == ("2023-07-03T00:00Z",
                                                            "2023-07-04T00:00Z")
    [forecast] = stored_forecasts(exchange.db_url)["dup-1"]
    assert list(forecast) == [f"2023-07-03T{h:02d}:00Z" for h in range(24)]
    assert forecast["2023-07-03T00:00Z"].carbon_g_per_kwh == 420.5
    assert all(set(h.gpus_free) == set(SITE_TYPES) for h in forecast.values())
    assert _metric(exchange, "gridbridge_telemetry_reports_total") == stored_before + 1
    assert _metric(exchange, "gridbridge_telemetry_duplicates_total") == duplicates_before + 2


def test_the_same_report_id_with_other_content_is_refused(exchange: Exchange) -> None:
    client = exchange.client("site")
    assert client.post(URL, json=telemetry("dup-2")).status_code == 201
    before = counts(exchange.db_url)
    changed = telemetry("dup-2")
    changed["hours"][0]["gpus_free"]["H100"] = 64
    answer = client.post(URL, json=changed)
    assert answer.status_code == 409
    assert "report_id 'dup-2'" in answer.json()["detail"] and "other content" in answer.text
    assert counts(exchange.db_url) == before


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body
    return change


# (id, change to a valid body or raw bytes, status, words the answer must contain)
BAD: list[tuple[str, Callable[[dict[str, Any]], Any] | bytes, int, tuple[str, ...]]] = [
    ("malformed-json", b'{"report_id": "x", "zone": ', 422, ("json_invalid",)),
    ("not-an-object", b"[1, 2]", 422, ("body",)),
    ("wrong-type", _set(("hours", 0, "gpus_free", "H100"), "eight"), 422,
     ("gpus_free", "H100", "integer")),
    ("fractional-gpus", _set(("hours", 0, "gpus_free", "H100"), 2.5), 422, ("gpus_free",)),
    ("negative-gpus", _set(("hours", 0, "gpus_free", "H100"), -8), 422,
     ("gpus_free", "greater than or equal to 0")),
    ("negative-carbon", _set(("hours", 1, "carbon_g_per_kwh"), -1.0), 422,
     ("carbon_g_per_kwh",)),
    # Just outside the sane bounds of gridbridge.limits (the bounds themselves are accepted:
    # test_telemetry_on_the_sane_bounds_is_stored).
    ("carbon-just-below-0", _set(("hours", 1, "carbon_g_per_kwh"), -0.001), 422,
     ("carbon_g_per_kwh", "between 0 and 2000 gCO2eq/kWh", "fix:")),
    ("carbon-just-above-2000", _set(("hours", 1, "carbon_g_per_kwh"), 2000.001), 422,
     ("carbon_g_per_kwh", "between 0 and 2000 gCO2eq/kWh", "fix:", "per kWh")),
    ("price-just-below-floor", _set(("hours", 2, "price_eur_per_mwh"), -10000.001), 422,
     ("price_eur_per_mwh", "between -10000 and 10000 EUR/MWh", "fix:")),
    ("price-just-above-cap", _set(("hours", 0, "price_eur_per_mwh"), 10000.001), 422,
     ("price_eur_per_mwh", "between -10000 and 10000 EUR/MWh", "fix:", "per MWh")),
    ("nan-carbon", b"NaN", 422, ("carbon_g_per_kwh", "finite", "\"input\":\"nan\"")),
    ("infinite-price", b"Infinity", 422, ("price_eur_per_mwh", "finite")),
    ("nan-gpus", b"NaN-gpus", 422, ("gpus_free", "H100")),
    ("not-on-the-hour", _set(("hours", 0, "hour_utc"), "2023-07-03T00:30Z"), 422,
     ("hour_utc", "whole hour")),
    ("not-utc", _set(("hours", 0, "hour_utc"), "2023-07-03T02:00+02:00"), 422,
     ("hour_utc", "UTC")),
    ("no-time-zone", _set(("hours", 0, "hour_utc"), "2023-07-03T00:00"), 422,
     ("hour_utc", "time zone")),
    ("repeated-hour", _set(("hours", 1, "hour_utc"), "2023-07-03T00:00Z"), 422,
     ("each hour_utc may appear once",)),
    ("no-hours", _set(("hours",), []), 422, ("hours",)),
    ("unknown-field", _set(("site",), "KR-SUWON-1"), 422, ("site", "extra")),
    ("bad-signal", _set(("signal",), "average"), 422, ("signal",)),
    ("bad-report-id", _set(("report_id",), "has spaces"), 422, ("report_id",)),
    ("unknown-zone", _set(("zone",), "DE"), 422,
     ("zone", "'DE' is not the zone of site KR-SUWON-1")),
    ("malformed-zone", _set(("zone",), "korea"), 422, ("zone",)),
    ("type-not-pooled", _set(("hours", 2, "gpus_free", "GH200"), 8), 422,
     ("gpus_free", "GH200", "no pool")),
    ("unknown-type", _set(("hours", 0, "gpus_free", "X100"), 8), 422, ("X100", "no pool")),
    ("other-signal", _set(("signal",), "lifecycle"), 409,
     ("signal 'lifecycle'", "never mixes signals")),
]


@pytest.fixture(scope="module")
def kr_direct(exchange: Exchange) -> None:
    """Zone KR's series is 'direct' (its first report)."""
    answer = exchange.client("site").post(URL, json=telemetry("fix-signal"))
    assert answer.status_code in (200, 201), answer.text


@pytest.mark.parametrize(("change", "status", "words"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_reports_are_refused_and_nothing_is_stored(
        exchange: Exchange, kr_direct: None, change: Callable[[dict[str, Any]], Any] | bytes,
        status: int, words: tuple[str, ...]) -> None:
    valid = telemetry("bad-report")
    if change == b"NaN":
        content = raw_json(_set(("hours", 1, "carbon_g_per_kwh"), float("nan"))(valid))
    elif change == b"Infinity":
        content = raw_json(_set(("hours", 1, "price_eur_per_mwh"), float("inf"))(valid))
    elif change == b"NaN-gpus":
        content = raw_json(_set(("hours", 0, "gpus_free", "H100"), float("nan"))(valid))
    elif isinstance(change, bytes):
        content = change
    else:
        content = raw_json(change(valid))
    before = counts(exchange.db_url)
    answer = exchange.client("site").post(URL, content=content, headers=JSON)
    assert answer.status_code == status, answer.text
    for word in words:
        assert word in answer.text, answer.text
    assert counts(exchange.db_url) == before
    if status == 422:
        assert answer.json()["detail"][0]["loc"][0] == "body"


def test_telemetry_on_the_sane_bounds_is_stored(exchange: Exchange, kr_direct: None) -> None:
    # A year after the other tests' hours, so no round of theirs sees these extremes.
    body = telemetry("on-the-bounds", hours=2, start=START + timedelta(days=365))
    body["hours"][0] |= {"carbon_g_per_kwh": 0, "price_eur_per_mwh": -10000}
    body["hours"][1] |= {"carbon_g_per_kwh": 2000, "price_eur_per_mwh": 10000}
    answer = exchange.client("site").post(URL, json=body)
    assert answer.status_code == 201, answer.text
    [forecast] = stored_forecasts(exchange.db_url)["on-the-bounds"]
    assert [(h.carbon_g_per_kwh, h.price_eur_per_mwh) for h in forecast.values()] == [
        (0, -10000), (2000, 10000)]


def test_an_oversized_report_gets_413_and_nothing_is_stored(exchange: Exchange) -> None:
    huge = telemetry("huge", hours=3)
    huge["provider"] = "x" * (3 * 2**20)
    before = counts(exchange.db_url)
    answer = exchange.client("site").post(URL, content=raw_json(huge), headers=JSON)
    assert answer.status_code == 413 and "too large" in answer.json()["detail"]
    chunks = (b"x" * 65536 for _ in range(64))  # streamed, no Content-Length
    streamed = exchange.client("site").post(URL, content=chunks, headers=JSON)
    assert streamed.status_code == 413
    assert counts(exchange.db_url) == before


def test_a_report_for_another_site_gets_403(exchange: Exchange) -> None:
    before = counts(exchange.db_url)
    answer = exchange.client("other_site").post(URL, json=telemetry("not-mine"))
    assert answer.status_code == 403
    assert f"site:{OTHER_SITE} may not POST" in answer.json()["detail"]
    admin = exchange.client("admin").post(URL, json=telemetry("not-mine"))
    assert admin.status_code == 403  # only the site itself reports
    assert counts(exchange.db_url) == before


def test_a_report_for_a_site_not_in_the_registry_gets_404(exchange: Exchange) -> None:
    # A site token can outlive its site's registry entry; model that with a token row.
    secret = "ghost-site-token-for-the-404-test"
    query(exchange.db_url, t.tokens.insert().values(
        token_id="tok_ghost", role="site", subject="GHOST-1", token_sha256=hash_token(secret),
        created_at_utc=datetime.now(UTC).isoformat(), revoked_at_utc=None))
    before = counts(exchange.db_url)
    answer = exchange.server.client(secret).post("/v1/sites/GHOST-1/telemetry",
                                                 json=telemetry("ghost"))
    assert answer.status_code == 404 and "site GHOST-1 is not in" in answer.json()["detail"]
    assert counts(exchange.db_url) == before


def test_asks_are_set_per_pool_and_bad_asks_refused(exchange: Exchange) -> None:
    client = exchange.client("site")
    answer = client.put(f"/v1/sites/{SITE}/asks", json={"asks": {"H100": 1.25}})
    assert answer.status_code == 200
    pools = {p["gpu_type"]: p["ask_eur_per_gpu_hour"] for p in answer.json()["pools"]}
    assert pools["H100"] == 1.25
    registry = client.get("/v1/registry").json()
    site = next(s for s in registry["sites"] if s["site_id"] == SITE)
    assert {p["gpu_type"]: p["ask_eur_per_gpu_hour"] for p in site["pools"]} == pools

    before = query(exchange.db_url, sa.select(t.pools).order_by(t.pools.c.site_id,
                                                                t.pools.c.gpu_type))
    for body, status, word in [
        (b'{"asks": {"H100": 1.3, "GH200": 2.0}}', 422, "GH200"),
        (b'{"asks": {"H100": -0.1}}', 422, "between 0 and 1000 EUR per GPU-hour"),
        (b'{"asks": {"H100": -0.001}}', 422, "between 0 and 1000 EUR per GPU-hour"),
        (b'{"asks": {"H100": 1000.001}}', 422, "between 0 and 1000 EUR per GPU-hour"),
        (b'{"asks": {"H100": NaN}}', 422, "finite"),
        (b'{"asks": {"H100": Infinity}}', 422, "finite"),
        (b'{"asks": {}}', 422, "asks"),
        (b'{"asks": {"H100": "cheap"}}', 422, "asks"),
    ]:
        refused = client.put(f"/v1/sites/{SITE}/asks", content=body, headers=JSON)
        assert refused.status_code == status and word in refused.text, refused.text
    missing = exchange.client("admin").put("/v1/sites/NOPE-1/asks", json={"asks": {"H100": 1}})
    assert missing.status_code == 404 and "NOPE-1" in missing.text
    after = query(exchange.db_url, sa.select(t.pools).order_by(t.pools.c.site_id,
                                                               t.pools.c.gpu_type))
    assert after == before


def test_asks_on_their_sane_bounds_are_accepted(exchange: Exchange) -> None:
    client = exchange.client("site")
    registry = client.get("/v1/registry").json()
    site = next(s for s in registry["sites"] if s["site_id"] == SITE)
    kept = {p["gpu_type"]: p["ask_eur_per_gpu_hour"] for p in site["pools"]}
    try:
        answer = client.put(f"/v1/sites/{SITE}/asks", json={"asks": {"H100": 1000, "A100": 0}})
        assert answer.status_code == 200, answer.text
        pools = {p["gpu_type"]: p["ask_eur_per_gpu_hour"] for p in answer.json()["pools"]}
        assert (pools["H100"], pools["A100"]) == (1000, 0)
    finally:  # the session's other tests clear rounds on this site: give its asks back
        assert client.put(f"/v1/sites/{SITE}/asks", json={"asks": kept}).status_code == 200


def test_first_reports_of_a_zone_racing_are_all_stored(exchange: Exchange) -> None:
    # A zone no other test reports, and several of its first reports at the same instant:
    # on PostgreSQL they race to fix the zone's signal, and every one must still be stored.
    site, zone, types = "CA-MONTREAL-1", "CA-QC", ("A100", "H100")
    with ExchangeStore.open(exchange.db_url) as store:
        token = create_token(store, "site", site, datetime.now(UTC))[1]
    start = threading.Barrier(6)
    answers: list[int] = []

    def post(n: int) -> None:
        body = telemetry(f"race-{n}", zone=zone, types=types)
        with exchange.server.client(token) as client:
            start.wait()
            answers.append(client.post(f"/v1/sites/{site}/telemetry", json=body).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [201] * 6
    signals = query(exchange.db_url, sa.select(t.zone_signals.c.signal)
                    .where(t.zone_signals.c.zone == zone))
    assert [s for (s,) in signals] == ["direct"]

"""A whole market round against the real server: telemetry from every site, sealed bids,
gate closure with its stored snapshot, clearing in the server's worker, and the results as
each role may see them; plus failed snapshots and crash-safety of the stored results."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange import worker
from gridbridge.exchange.snapshot import read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.worker import _market, clear_round
from gridbridge.ledger.store import ledger_postings
from gridbridge.settlement.postings import round_postings
from optim.check import check_clearing
from tests.exchange.conftest import (
    TEST_WORKER,
    WINDOW,
    Exchange,
    _bid,
    _open,
    _wait_until_done,
    copy_round,
)
from tests.exchange.server import query


def _bundle(ex: Exchange, round_id: str) -> dict[str, str]:
    with ExchangeStore.open(ex.db_url) as store, store.read() as conn:
        return read_bundle_rows(conn, round_id)


def _frame(rows: list[dict[str, Any]], *times: str) -> pl.DataFrame:
    frame = pl.DataFrame(rows)
    return frame.with_columns(pl.col(c).str.to_datetime("%Y-%m-%dT%H:%MZ", time_zone="UTC")
                              .dt.cast_time_unit("us") for c in times)


def test_the_cleared_round_is_feasible_on_its_stored_snapshot(market_exchange: Exchange,
                                                              cleared: str) -> None:
    ex = market_exchange
    files = _bundle(ex, cleared)
    market = _market(files, cleared)
    assert sorted(market.bids["bid_id"]) == ["DE:de-cheap", "DE:kr-big", "KR:kr-big",
                                             "KR:kr-small"]  # the withdrawn bid is not there
    assert market.grid["carbon_lifecycle_g_per_kwh"].null_count() == market.grid.height
    placed = ex.client("planner").get(f"/v1/rounds/{cleared}/placements").json()
    assert placed, "the round placed nothing"
    placements = _frame(placed, "start_utc", "end_utc").with_columns(
        bid_id=pl.col("member") + ":" + pl.col("bid_id"))
    rejected = query(ex.db_url, sa.select(t.rejected.c.member, t.rejected.c.bid_id,
                                          t.rejected.c.reason)
                     .where(t.rejected.c.round_id == cleared))
    rejected_frame = pl.DataFrame([{"bid_id": f"{m}:{b}", "reason": r} for m, b, r in rejected],
                                  schema={"bid_id": pl.String, "reason": pl.String})
    assert placements.height + rejected_frame.height == 4
    summary = ex.client("treasurer").get(f"/v1/rounds/{cleared}/summary").json()
    prices = _frame(ex.client("site").get(f"/v1/rounds/{cleared}/prices").json(), "hour_utc")
    report = check_clearing(market, placements, rejected_frame, summary, prices)
    assert report.ok, report.problems
    assert summary["solve_seconds"] > 0 and summary["status"]
    metrics = ex.client().get("/metrics").text
    solved = [ln for ln in metrics.splitlines()
              if ln.startswith("gridbridge_solve_seconds_total ")]
    assert float(solved[0].split()[1]) > 0


def test_the_ledger_lines_are_the_round_postings(market_exchange: Exchange,
                                                 cleared: str) -> None:
    ex = market_exchange
    lines = ex.client("treasurer").get(f"/v1/rounds/{cleared}/ledger").json()
    assert lines and sum(line["amount_cents"] for line in lines) == 0
    market = _market(_bundle(ex, cleared), cleared)
    placed = _frame(ex.client("admin").get(f"/v1/rounds/{cleared}/placements").json(),
                    "start_utc", "end_utc").with_columns(
        bid_id=pl.col("member") + ":" + pl.col("bid_id"))
    expected = round_postings(cleared, market.config.window_start_utc, placed, market.members)
    columns = ["posting_id", "bid_id", "account", "kind", "amount_cents", "posted_at_utc"]
    assert [tuple(line[c] for c in columns) for line in lines] == list(
        expected.select(columns).iter_rows())
    assert ex.client("planner").get(f"/v1/rounds/{cleared}/ledger").status_code == 403


def test_each_member_and_site_sees_only_its_own(market_exchange: Exchange,
                                                cleared: str) -> None:
    ex = market_exchange
    everything = ex.client("planner").get(f"/v1/rounds/{cleared}/placements").json()
    for member in ("KR", "DE"):
        own = ex.client(f"member_{member.lower()}").get(
            f"/v1/rounds/{cleared}/placements").json()
        assert own == [p for p in everything if p["member"] == member]
    for site_id in {p["site_id"] for p in everything}:
        seen = ex.client(f"site:{site_id}").get(f"/v1/rounds/{cleared}/placements").json()
        assert seen == [p for p in everything if p["site_id"] == site_id]
        jobs = ex.client(f"site:{site_id}").get(f"/v1/sites/{site_id}/assignments").json()
        assert {(j["round_id"], j["member"], j["bid_id"], j["gpu_type"], j["gpus"],
                 j["start_utc"], j["end_utc"]) for j in jobs} >= {
            (cleared, p["member"], p["bid_id"], p["gpu_type"], p["gpus"], p["start_utc"],
             p["end_utc"]) for p in seen}
        other = next(s for s in ("KR-SUWON-1", "SG-NSCC-1") if s != site_id)
        assert ex.client(f"site:{site_id}").get(
            f"/v1/sites/{other}/assignments").status_code == 403


def test_closing_twice_is_a_conflict(market_exchange: Exchange, cleared: str) -> None:
    again = market_exchange.client("admin").post(f"/v1/rounds/{cleared}/close")
    assert again.status_code == 409 and "cleared" in again.json()["detail"]


def _held(ex: Exchange) -> dict[tuple[str, str, str], int]:
    """GPUs per (site, GPU type, hour) placed by every cleared (or settled) round."""
    held: dict[tuple[str, str, str], int] = {}
    for found in ex.client("planner").get("/v1/rounds").json():
        if found["state"] not in ("cleared", "settled"):
            continue
        for p in ex.client("planner").get(f"/v1/rounds/{found['round_id']}/placements").json():
            hour = datetime.fromisoformat(p["start_utc"])
            while hour < datetime.fromisoformat(p["end_utc"]):
                key = (p["site_id"], p["gpu_type"], hour.strftime("%Y-%m-%dT%H:%MZ"))
                held[key] = held.get(key, 0) + p["gpus"]
                hour += timedelta(hours=1)
    return held


def test_the_stored_bundle_and_rejected_bids_are_readable_and_bids_stay_sealed(
        market_exchange: Exchange, cleared: str) -> None:
    ex = market_exchange
    stored = _bundle(ex, cleared)
    for name, text in stored.items():
        answer = ex.client("treasurer").get(f"/v1/rounds/{cleared}/bundle/{name}")
        assert answer.status_code == 200 and answer.text == text, name
    assert ex.client("member_de").get(f"/v1/rounds/{cleared}/bundle/grid.csv"
                                      ).text == stored["grid.csv"]
    sealed = ex.client("member_de").get(f"/v1/rounds/{cleared}/bundle/bids.csv")
    assert sealed.status_code == 403 and "sealed" in sealed.json()["detail"]
    unknown = ex.client("planner").get(f"/v1/rounds/{cleared}/bundle/nope.csv")
    assert unknown.status_code == 404 and "capacity.csv" in unknown.json()["detail"]

    everything = ex.client("planner").get(f"/v1/rounds/{cleared}/rejected").json()
    stored_rows = query(ex.db_url, sa.select(t.rejected).where(t.rejected.c.round_id == cleared))
    assert sorted((r["member"], r["bid_id"], r["reason"]) for r in everything) == sorted(
        (r.member, r.bid_id, r.reason) for r in stored_rows)
    assert {r["bid_id"] for r in everything} == {"de-cheap"}  # 1 EUR cannot cover a job
    assert everything[0]["reason"] == "below_cost" and everything[0]["detail"]
    assert ex.client("member_kr").get(f"/v1/rounds/{cleared}/rejected").json() == []
    assert ex.client("member_de").get(f"/v1/rounds/{cleared}/rejected").json() == everything
    assert ex.client("site").get(f"/v1/rounds/{cleared}/rejected").status_code == 403


def test_the_outlook_is_the_reported_market_net_of_cleared_placements(
        market_exchange: Exchange, cleared: str) -> None:
    ex = market_exchange
    stored = _bundle(ex, cleared)
    query_text = f"start_utc={WINDOW[0]}&end_utc=2023-07-05T12:00Z&carbon_signal=direct"

    def outlook(name: str) -> str:
        answer = ex.client("member_kr").get(f"/v1/outlook/{name}?{query_text}")
        assert answer.status_code == 200, answer.text
        return answer.text

    assert outlook("sites.csv") == stored["sites.csv"]
    assert outlook("market.toml").startswith("# GridBridge market bundle")
    # Grid: the reported 48 hours exactly; the 12 hours after them nobody reported.
    grid = pl.read_csv(io.StringIO(outlook("grid.csv")))
    assert grid.equals(pl.read_csv(io.StringIO(stored["grid.csv"])))
    # Capacity: the stored snapshot (taken before the round cleared) minus every cleared
    # round's placements; 0 in the hours without telemetry.
    before = pl.read_csv(io.StringIO(stored["capacity.csv"]))
    was = {(s, g, h): n for s, g, h, n in before.select(
        "site_id", "gpu_type", "hour_utc", "gpus_available").iter_rows()}
    held = _held(ex)
    assert held, "nothing placed: weak test"
    now = pl.read_csv(io.StringIO(outlook("capacity.csv")))
    assert now.height == before.height // 48 * 60
    for s, g, h, n in now.select("site_id", "gpu_type", "hour_utc",
                                 "gpus_available").iter_rows():
        assert n == max(0, was.get((s, g, h), 0) - held.get((s, g, h), 0)), (s, g, h)
    bad = ex.client("planner").get(f"/v1/outlook/grid.csv?start_utc={WINDOW[1]}"
                                   f"&end_utc={WINDOW[0]}&carbon_signal=direct")
    assert bad.status_code == 422 and "end_utc must be after start_utc" in bad.text
    sealed = ex.client("planner").get(f"/v1/outlook/bids.csv?{query_text}")
    assert sealed.status_code == 404 and "sealed" in sealed.json()["detail"]


def test_results_before_clearing_are_a_conflict(market_exchange: Exchange) -> None:
    ex = market_exchange
    round_id = _open(ex)
    for path in ("placements", "prices", "summary", "ledger"):
        answer = ex.client("admin").get(f"/v1/rounds/{round_id}/{path}")
        assert answer.status_code == 409 and "is open" in answer.json()["detail"], path
    # A round without bids clears to nothing: the clearing's status says nothing was decided.
    assert ex.client("admin").post(f"/v1/rounds/{round_id}/close").status_code == 200
    assert _wait_until_done(ex, round_id)["state"] == "cleared"
    assert ex.client("admin").get(f"/v1/rounds/{round_id}/placements").json() == []
    assert ex.client("admin").get(f"/v1/rounds/{round_id}/ledger").json() == []
    assert ex.client("admin").get(f"/v1/rounds/{round_id}/summary").json()["status"] == "empty"


def test_an_overlapping_round_sees_the_first_rounds_placements_taken(
        market_exchange: Exchange, cleared: str) -> None:
    ex = market_exchange
    first = pl.read_csv(io.StringIO(_bundle(ex, cleared)["capacity.csv"]))
    second_id = _open(ex, "2023-07-04T00:00Z", WINDOW[1])
    _bid(ex, "member_de", second_id, "de-later", gpus=16, value_eur=30000.0,
         release_utc="2023-07-04T00:00Z")
    closed = ex.client("planner").post(f"/v1/rounds/{second_id}/close")
    assert closed.status_code == 200 and closed.json()["state"] != "failed", closed.text
    second = pl.read_csv(io.StringIO(_bundle(ex, second_id)["capacity.csv"]))
    held = _held(ex)  # the first round's placements (the others placed nothing)
    assert any(k[2] >= "2023-07-04T00:00Z" for k in held), "nothing to subtract: weak test"
    before = {(s, g, h): n for s, g, h, n in first.select(
        "site_id", "gpu_type", "hour_utc", "gpus_available").iter_rows()}
    assert second.height == first.height // 2
    for s, g, h, n in second.select("site_id", "gpu_type", "hour_utc",
                                    "gpus_available").iter_rows():
        assert n == max(0, before[(s, g, h)] - held.get((s, g, h), 0)), (s, g, h)
    done = _wait_until_done(ex, second_id)
    assert done["state"] == "cleared", done["reason"]


def test_a_zone_without_grid_hours_fails_the_round_with_the_reason(
        market_exchange: Exchange) -> None:
    ex = market_exchange
    round_id = _open(ex, "2023-07-04T00:00Z", "2023-07-06T00:00Z")  # the reports end 07-05
    closed = ex.client("planner").post(f"/v1/rounds/{round_id}/close")
    assert closed.status_code == 200, closed.text
    found = closed.json()
    assert found["state"] == "failed"
    assert "zone KR: 24 of 48 hours (2023-07-05T00:00Z .. 2023-07-05T23:00Z)" in found["reason"]
    assert _bundle(ex, round_id) == {}
    assert ex.client("planner").post(f"/v1/rounds/{round_id}/close").status_code == 409


# ------------------------------------------------------------------ crash-safety (in process)


def _stored(ex: Exchange, round_id: str) -> dict[str, int]:
    counted = {}
    for table in (t.placements, t.prices, t.rejected, ledger_postings):
        rows = query(ex.db_url, sa.select(sa.func.count()).select_from(table)
                     .where(table.c.round_id == round_id))
        counted[table.name] = rows[0][0]
    return counted


def _clear_in_process(ex: Exchange, round_id: str) -> str:
    with ExchangeStore.open(ex.db_url) as store:
        return clear_round(store, round_id, lambda: datetime.now(UTC), worker_id=TEST_WORKER)


def test_a_failure_while_storing_leaves_nothing_partial(
        market_exchange: Exchange, cleared: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = market_exchange
    round_id = copy_round(ex, cleared, state="clearing")

    def broken_ledger(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("disk on fire")  # after the placements, prices, rejected inserts

    monkeypatch.setattr(worker, "post_round_on", broken_ledger)
    assert _clear_in_process(ex, round_id) == "failed"
    found = ex.client("planner").get(f"/v1/rounds/{round_id}").json()
    assert found["state"] == "failed" and "disk on fire" in found["reason"]
    assert found["progress"] == "failed"
    assert _stored(ex, round_id) == dict.fromkeys(
        ("exchange_placements", "exchange_prices", "exchange_rejected", "ledger_postings"), 0)
    assert ex.client("admin").get(f"/v1/rounds/{round_id}/placements").status_code == 409


def test_an_invalid_snapshot_fails_the_round_with_the_reason(market_exchange: Exchange,
                                                             cleared: str) -> None:
    ex = market_exchange
    broken = _bundle(ex, cleared)["bids.csv"].replace(",24,", ",-3,", 1)
    assert broken != _bundle(ex, cleared)["bids.csv"]
    round_id = copy_round(ex, cleared, state="clearing", edit={"bids.csv": broken})
    assert _clear_in_process(ex, round_id) == "failed"
    found = ex.client("planner").get(f"/v1/rounds/{round_id}").json()
    assert found["state"] == "failed" and "bids.csv" in found["reason"], found
    assert set(_stored(ex, round_id).values()) == {0}


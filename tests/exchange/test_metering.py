"""Metering against the real server: a site's report stored once and trued up into the
ledger in one transaction, refusals that store nothing, the round settled; and the
settlement reports downloaded per role."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from gridbridge.limits import CARBON_G_PER_KWH
from tests.conftest import run_cli
from tests.exchange.conftest import Exchange, _open
from tests.exchange.server import counts


def _hour(text: str, plus: int = 0) -> str:
    return (datetime.fromisoformat(text) + timedelta(hours=plus)).strftime("%Y-%m-%dT%H:%MZ")


def _metering_counts(ex: Exchange) -> dict[str, int]:
    found = counts(ex.db_url)
    return {k: found[k] for k in ("metering_reports", "metering_rows", "trueup_records")}


@pytest.fixture(scope="module")
def placement(market_exchange: Exchange, cleared: str) -> dict[str, Any]:
    """The cleared round's first placement (as the planner sees it)."""
    placed = market_exchange.client("planner").get(f"/v1/rounds/{cleared}/placements").json()
    assert placed, "the round placed nothing"
    return dict(placed[0])


def _report(report_id: str, round_id: str, p: dict[str, Any], *hours: int,
            kwh: float = 50.0) -> dict[str, Any]:
    return {"report_id": report_id, "round_id": round_id, "rows": [
        {"bid_id": p["bid_id"], "member": p["member"], "hour_utc": _hour(p["start_utc"], h),
         "energy_kwh": kwh + h, "carbon_g_per_kwh": 300.0} for h in hours]}


@pytest.fixture(scope="module")
def metered(market_exchange: Exchange, cleared: str, placement: dict[str, Any]) -> str:
    """The first metering report (hours 0 and 1 of the placement), posted once: its id."""
    ex, site = market_exchange, placement["site_id"]
    answer = ex.client(f"site:{site}").post(f"/v1/sites/{site}/metering",
                                            json=_report("m-1", cleared, placement, 0, 1))
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"report_id": "m-1", "status": "stored"}
    return "m-1"


def test_metering_is_stored_once_and_corrects_the_ledger(
        market_exchange: Exchange, cleared: str, placement: dict[str, Any],
        metered: str) -> None:
    ex, site = market_exchange, placement["site_id"]
    before = _metering_counts(ex)
    assert before == {"metering_reports": 1, "metering_rows": 2, "trueup_records": 1}
    again = ex.client(f"site:{site}").post(f"/v1/sites/{site}/metering",
                                           json=_report(metered, cleared, placement, 0, 1))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    other = ex.client(f"site:{site}").post(
        f"/v1/sites/{site}/metering", json=_report(metered, cleared, placement, 0, 1, kwh=9))
    assert other.status_code == 409 and "other content" in other.json()["detail"]
    assert _metering_counts(ex) == before
    lines = ex.client("treasurer").get(f"/v1/rounds/{cleared}/ledger").json()
    corrections = [ln for ln in lines if ln["kind"] == "correction"]
    assert corrections, "the true-up posted no correction"
    assert sum(ln["amount_cents"] for ln in corrections) == 0
    assert sum(ln["amount_cents"] for ln in lines) == 0
    bid = f"{placement['member']}:{placement['bid_id']}"
    assert {ln["bid_id"] for ln in corrections} == {bid}
    assert all(ln["posting_id"].startswith(f"{cleared}:meter:{site}:{metered}:")
               for ln in corrections)
    assert ex.client("planner").get(f"/v1/rounds/{cleared}").json()["state"] == "settled"
    # Results stay readable once settled.
    assert ex.client("planner").get(f"/v1/rounds/{cleared}/placements").status_code == 200
    metrics = ex.client().get("/metrics").text
    assert "gridbridge_metering_reports_total 1.0" in metrics
    assert "gridbridge_metering_duplicates_total 1.0" in metrics


def test_a_later_report_adds_a_batch_and_an_hour_is_metered_once(
        market_exchange: Exchange, cleared: str, placement: dict[str, Any],
        metered: str) -> None:
    ex, site = market_exchange, placement["site_id"]
    client = ex.client(f"site:{site}")
    twice = client.post(f"/v1/sites/{site}/metering",
                        json=_report("m-twice", cleared, placement, 1, 2))
    assert twice.status_code == 409 and "metered by an earlier report" in twice.json()["detail"]
    later = client.post(f"/v1/sites/{site}/metering", json=_report("m-2", cleared, placement, 2))
    assert later.status_code == 201, later.text
    lines = ex.client("admin").get(f"/v1/rounds/{cleared}/ledger").json()
    assert sum(ln["amount_cents"] for ln in lines) == 0
    assert any(ln["posting_id"].startswith(f"{cleared}:meter:{site}:m-2:") for ln in lines)
    # The site's assignments say which hours the exchange holds, so an agent whose spool was
    # lost meters only the others.
    jobs = client.get(f"/v1/sites/{site}/assignments").json()
    [job] = [j for j in jobs if (j["round_id"], j["member"], j["bid_id"]) ==
             (cleared, placement["member"], placement["bid_id"])]
    assert job["round_state"] == "settled"
    assert job["metered_hours_utc"] == [_hour(placement["start_utc"], h) for h in (0, 1, 2)]


def test_refused_metering_stores_nothing(market_exchange: Exchange, cleared: str,
                                         placement: dict[str, Any], metered: str) -> None:
    ex, site = market_exchange, placement["site_id"]
    before = _metering_counts(ex)
    lines_before = ex.client("treasurer").get(f"/v1/rounds/{cleared}/ledger").json()
    other = next(s for s in ("KR-SUWON-1", "SG-NSCC-1", "DE-JUELICH-1") if s != site)
    # Another site's placement.
    answer = ex.client(f"site:{other}").post(f"/v1/sites/{other}/metering",
                                             json=_report("x-1", cleared, placement, 3))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "rows", 0, "bid_id"]
    # A site token for another site's path.
    assert ex.client(f"site:{other}").post(
        f"/v1/sites/{site}/metering", json=_report("x-2", cleared, placement, 3)
    ).status_code == 403
    # Outside the placement's hours (the second row: nothing of the first is kept).
    length = (datetime.fromisoformat(placement["end_utc"])
              - datetime.fromisoformat(placement["start_utc"])) // timedelta(hours=1)
    answer = ex.client(f"site:{site}").post(
        f"/v1/sites/{site}/metering", json=_report("x-3", cleared, placement, 4, length))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "rows", 1, "hour_utc"]
    assert "outside" in answer.json()["detail"][0]["msg"]
    # A round not cleared.
    open_id = _open(ex)
    answer = ex.client(f"site:{site}").post(f"/v1/sites/{site}/metering",
                                            json=_report("x-4", open_id, placement, 3))
    assert answer.status_code == 409 and "is open" in answer.json()["detail"]
    assert _metering_counts(ex) == before
    assert ex.client("treasurer").get(f"/v1/rounds/{cleared}/ledger").json() == lines_before


@pytest.mark.parametrize("field", ["energy_kwh", "carbon_g_per_kwh"])
def test_metering_beyond_any_real_site_is_refused(market_exchange: Exchange, cleared: str,
                                                  placement: dict[str, Any], metered: str,
                                                  field: str) -> None:
    # Found by tests/fuzz: 1e300 kWh (or gCO2/kWh) passed validation, and the true-up's
    # amounts overflowed the ledger's cents: a 500.
    ex, site = market_exchange, placement["site_id"]
    before = _metering_counts(ex)
    body = _report("x-huge", cleared, placement, 3)
    body["rows"][0][field] = 1e300
    answer = ex.client(f"site:{site}").post(f"/v1/sites/{site}/metering", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "rows", 0, field]
    assert _metering_counts(ex) == before


def test_reports_download_per_role(market_exchange: Exchange, cleared: str,
                                   placement: dict[str, Any], metered: str) -> None:
    ex = market_exchange
    base = f"/v1/rounds/{cleared}/reports"
    first = ex.client("treasurer").get(f"{base}/ledger.csv")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/csv")
    assert first.headers["content-disposition"] == (
        f'attachment; filename="{cleared}-ledger.csv"')
    assert ex.client("treasurer").get(f"{base}/ledger.csv").content == first.content
    ledger = pl.read_csv(io.BytesIO(first.content))
    assert (ledger["kind"] == "correction").any() and ledger["amount_cents"].sum() == 0
    metering = pl.read_csv(io.BytesIO(ex.client("planner").get(f"{base}/metering.csv").content))
    assert metering.height >= 1 and metering["batch_id"][0].startswith("meter:")
    parquet = ex.client("admin").get(f"{base}/member_totals.parquet")
    assert parquet.status_code == 200
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert pl.read_parquet(io.BytesIO(parquet.content)).height >= 1
    book = ex.client("treasurer").get(f"{base}/settlement.xlsx")
    assert book.status_code == 200 and "spreadsheetml" in book.headers["content-type"]
    sheets = openpyxl.load_workbook(io.BytesIO(book.content)).sheetnames
    assert "ledger" in sheets and "metering" in sheets and "member_statements" in sheets

    own = ex.client("member_kr").get(f"{base}/member_statements.csv")
    assert own.status_code == 200, own.text
    assert set(pl.read_csv(io.BytesIO(own.content))["member"]) == {"KR"}
    totals = pl.read_csv(io.BytesIO(ex.client("member_de").get(f"{base}/member_totals.csv")
                                    .content))
    assert set(totals["member"]) == {"DE"}
    for name in ("ledger.csv", "member_statements.parquet", "settlement.xlsx"):
        assert ex.client("member_kr").get(f"{base}/{name}").status_code == 403, name
    site = placement["site_id"]
    assert ex.client(f"site:{site}").get(f"{base}/ledger.csv").status_code == 403
    assert ex.client().get(f"{base}/ledger.csv").status_code == 401
    assert ex.client("treasurer").get(f"{base}/nothing.csv").status_code == 404
    assert ex.client("treasurer").get(
        f"/v1/rounds/{_open(ex)}/reports/ledger.csv").status_code == 409


def test_gridbridge_report_reads_an_exchange_round(
        market_exchange: Exchange, cleared: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["report", "--db", market_exchange.db_url, "--round", cleared,
                              "--out", str(tmp_path / "r")], capsys)
    assert code == 0, out + err
    ledger = pl.read_csv(tmp_path / "r" / "ledger.csv")
    assert ledger.height > 0 and int(ledger["amount_cents"].sum()) == 0
    served = market_exchange.client("treasurer").get(
        f"/v1/rounds/{cleared}/reports/ledger.csv").content
    assert (tmp_path / "r" / "ledger.csv").read_bytes() == served
    code, _, err = run_cli(["report", "--db", market_exchange.db_url], capsys)
    assert code == 2 and "--round" in err


def test_a_metered_intensity_beyond_any_grid_is_refused_by_name(
        market_exchange: Exchange, cleared: str, placement: dict[str, Any], metered: str) -> None:
    # The same sane bound as a reported or bundled intensity (gridbridge.limits): 2,000
    # gCO2eq/kWh is accepted, just above it is refused with the field, its bounds and the fix.
    ex, site = market_exchange, placement["site_id"]
    before = _metering_counts(ex)
    body = _report("x-per-mwh", cleared, placement, 3)
    body["rows"][0]["carbon_g_per_kwh"] = CARBON_G_PER_KWH.high + 0.5
    answer = ex.client(f"site:{site}").post(f"/v1/sites/{site}/metering", json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "rows", 0, "carbon_g_per_kwh"]
    assert "between 0 and 2000 gCO2eq/kWh" in detail["msg"] and "not per MWh" in detail["msg"]
    assert _metering_counts(ex) == before
    body = _report("x-dirtiest", cleared, placement, 3)
    body["rows"][0]["carbon_g_per_kwh"] = CARBON_G_PER_KWH.high
    answer = ex.client(f"site:{site}").post(f"/v1/sites/{site}/metering", json=body)
    assert answer.status_code in (200, 201), answer.text

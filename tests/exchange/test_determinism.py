"""The same market and bids give byte-identical results on both backends: a round cleared by
an exchange on SQLite and one on PostgreSQL store the same placements, prices, rejections and
ledger lines, and their settlement reports (CSV and Parquet) are the same bytes. Only the
round ids differ (they are random), so they are replaced before comparing; wall-clock
figures (``solve_seconds``) are left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridbridge.reports import REPORT_TABLES
from tests.databases import Databases
from tests.exchange.conftest import Exchange, _bid, _open, _wait_until_done, market_serving

ROUND = "R-round"


def _clear_the_same_round(ex: Exchange) -> str:
    round_id = _open(ex)
    _bid(ex, "member_kr", round_id, "kr-big", gpus=24, value_eur=60000.0,
         options=[{"gpu_type": "H100", "hours": 24}])
    _bid(ex, "member_kr", round_id, "kr-small", gpus=8, value_eur=9000.0)
    _bid(ex, "member_de", round_id, "de-train", gpus=16, value_eur=30000.0,
         allowed_jurisdictions=["DE", "GB"])
    _bid(ex, "member_de", round_id, "de-cheap", gpus=16, value_eur=1.0)
    assert ex.client("planner").post(f"/v1/rounds/{round_id}/close").status_code == 200
    done = _wait_until_done(ex, round_id)
    assert done["state"] == "cleared", done.get("reason")
    return round_id


def _results(ex: Exchange) -> dict[str, Any]:
    """Everything the round stored, as the API gives it, with the round id replaced."""
    round_id = _clear_the_same_round(ex)
    found: dict[str, Any] = {}
    for path in ("placements", "prices", "rejected", "ledger"):
        found[path] = ex.client("treasurer" if path == "ledger" else "planner").get(
            f"/v1/rounds/{round_id}/{path}").text.replace(round_id, ROUND)
    summary = ex.client("planner").get(f"/v1/rounds/{round_id}/summary").json()
    summary.pop("solve_seconds")
    found["summary"] = str(summary).replace(round_id, ROUND)
    for table in REPORT_TABLES:
        for fmt in ("csv", "parquet"):
            answer = ex.client("treasurer").get(f"/v1/rounds/{round_id}/reports/{table}.{fmt}")
            assert answer.status_code == 200, answer.text
            found[f"{table}.{fmt}"] = answer.content.replace(round_id.encode(), ROUND.encode())
    return found


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sqlite-side")
    made = Databases("sqlite", folder)
    with market_serving(made.fresh("same"), folder) as ex:
        yield _results(ex)


def test_a_round_is_byte_identical_on_sqlite_and_postgresql(
        on_sqlite: dict[str, Any], postgres_databases: Databases, tmp_path: Path) -> None:
    with market_serving(postgres_databases.fresh("same"), tmp_path) as ex:
        on_postgresql = _results(ex)
    assert on_sqlite.keys() == on_postgresql.keys()
    different = [name for name in on_sqlite if on_sqlite[name] != on_postgresql[name]]
    assert not different, different
    assert '"bid_id":"kr-big"' in on_sqlite["placements"]  # not two empty results

"""The clearing lease against real servers: a round whose worker died is taken over and
posted once; a round that keeps killing its workers fails with the reason; a worker that lost
its lease stores nothing; and a server SIGKILLed mid-clearing has its round finished by the
next process on the database."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.snapshot import read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.worker import _market, clear_round
from gridbridge.ledger.store import ledger_postings
from gridbridge.settlement.postings import round_postings
from tests.databases import Databases
from tests.exchange.conftest import (
    FOREVER,
    TEST_WORKER,
    WINDOW,
    Exchange,
    _bid,
    _wait_until_done,
    copy_round,
    market_serving,
)
from tests.exchange.server import query

PAST = "2000-01-01T00:00:00.000Z"


def _run(ex: Exchange, round_id: str) -> sa.Row[tuple[object, ...]]:
    return query(ex.db_url, sa.select(t.round_runs).where(t.round_runs.c.round_id == round_id))[0]


def _posted_once(ex: Exchange, round_id: str) -> None:
    """The round's ledger lines are exactly its postings (none twice), summing to 0."""
    with ExchangeStore.open(ex.db_url) as store, store.read() as conn:
        market = _market(read_bundle_rows(conn, round_id), round_id)
    placed = ex.client("planner").get(f"/v1/rounds/{round_id}/placements").json()
    frame = pl.DataFrame(placed).with_columns(
        pl.col("start_utc", "end_utc").str.to_datetime("%Y-%m-%dT%H:%MZ", time_zone="UTC")
        .dt.cast_time_unit("us"), bid_id=pl.col("member") + ":" + pl.col("bid_id"))
    expected = round_postings(round_id, market.config.window_start_utc, frame, market.members)
    lines = query(ex.db_url, sa.select(ledger_postings.c.posting_id, ledger_postings.c.amount_cents)
                  .where(ledger_postings.c.round_id == round_id))
    assert sorted(p for p, _ in lines) == sorted(expected["posting_id"])
    assert sum(c for _, c in lines) == 0


def test_a_round_whose_worker_died_is_taken_over_and_posted_once(
        market_exchange: Exchange, cleared: str) -> None:
    ex = market_exchange
    dead = copy_round(ex, cleared, state="clearing", worker_id="gone:1:aa",
                      lease_until_utc=PAST)
    done = _wait_until_done(ex, dead)
    assert done["state"] == "cleared", done.get("reason")
    run = _run(ex, dead)
    assert run.attempts == 2 and run.worker_id not in ("gone:1:aa", None)
    _posted_once(ex, dead)


def test_a_round_that_killed_every_worker_fails_with_the_reason(
        market_exchange: Exchange, cleared: str) -> None:
    ex = market_exchange
    dead = copy_round(ex, cleared, state="clearing", worker_id="gone:3:cc",
                      lease_until_utc=PAST, attempts=3)
    done = _wait_until_done(ex, dead)
    assert done["state"] == "failed"
    assert "3 workers took the round and none finished" in done["reason"]
    assert "gone:3:cc" in done["reason"] and "fix" in done["reason"]
    assert query(ex.db_url, sa.select(sa.func.count()).select_from(ledger_postings)
                 .where(ledger_postings.c.round_id == dead))[0][0] == 0


def test_a_worker_that_lost_its_lease_stores_nothing(market_exchange: Exchange,
                                                     cleared: str) -> None:
    ex = market_exchange
    taken = copy_round(ex, cleared, state="clearing", worker_id="other:2:bb",
                       lease_until_utc=FOREVER)
    with ExchangeStore.open(ex.db_url) as store:
        state = clear_round(store, taken, lambda: datetime.now(UTC), worker_id=TEST_WORKER)
    assert state == "lost"
    assert ex.client("planner").get(f"/v1/rounds/{taken}").json()["state"] == "clearing"
    for table in (t.placements, t.prices, t.rejected, ledger_postings):
        assert query(ex.db_url, sa.select(sa.func.count()).select_from(table)
                     .where(table.c.round_id == taken))[0][0] == 0, table.name


#: Seconds of lease in the SIGKILL test (renewed every second) and the round's time limit.
LEASE_S, TIME_LIMIT_S = 3, 8


@pytest.fixture
def short_lease(tmp_path: Path, databases: Databases) -> Iterator[Exchange]:
    with market_serving(databases.fresh("lease"), tmp_path,
                        ("--clearing-lease", str(LEASE_S))) as running:
        yield running


def test_a_round_outlives_the_process_killed_while_clearing_it(short_lease: Exchange) -> None:
    ex = short_lease
    answer = ex.client("planner").post("/v1/rounds", json={
        "window_start_utc": WINDOW[0], "window_end_utc": WINDOW[1],
        "carbon_price_eur_per_t": 80.0, "carbon_signal": "direct",
        "time_limit_s": TIME_LIMIT_S})
    assert answer.status_code == 201 and answer.json()["time_limit_s"] == TIME_LIMIT_S
    round_id = answer.json()["round_id"]
    rng = random.Random(5)
    for i in range(80):  # congested: the search runs to its time limit
        who = rng.choice(("member_kr", "member_de"))
        _bid(ex, who, round_id, f"job-{i}", gpus=rng.choice((8, 16, 24)),
             value_eur=float(rng.randint(2000, 40000)),
             options=[{"gpu_type": "H100", "hours": rng.randint(4, 20)},
                      {"gpu_type": "A100", "hours": rng.randint(8, 30)}])
    closed = ex.client("planner").post(f"/v1/rounds/{round_id}/close")
    # The answer reads the round after the close commits: the worker may have claimed it.
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] in ("gate_closed", "clearing"), closed.text
    deadline = time.monotonic() + 30
    while _run_progress(ex, round_id) in (None, "claimed") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    assert ex.client("planner").get(f"/v1/rounds/{round_id}").json()["state"] == "clearing"
    first = _run(ex, round_id).worker_id
    ex.server.kill()

    ex.restart()  # a new process on the same database takes the round over
    done = _wait_until_done(ex, round_id, timeout_s=LEASE_S + TIME_LIMIT_S + 60)
    assert done["state"] == "cleared", done.get("reason")
    run = _run(ex, round_id)
    assert run.attempts == 2 and run.worker_id != first
    _posted_once(ex, round_id)


def _run_progress(ex: Exchange, round_id: str) -> str | None:
    found = ex.client("planner").get(f"/v1/rounds/{round_id}").json()
    return found.get("progress")

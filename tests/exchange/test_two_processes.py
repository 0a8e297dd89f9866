"""Two exchange processes on one database (the deployment README.md describes: one database,
N stateless ``gridbridge exchange serve`` processes behind any load balancer): either takes
reports and bids, exactly one clears a round, and when the one clearing it dies, the other
takes it over — the round posted once."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.ledger.store import ledger_postings
from tests.conftest import W27
from tests.databases import Databases
from tests.exchange.conftest import WINDOW, Exchange, _report_every_site, _wait_until_done
from tests.exchange.server import Server, bid_body, init_exchange, query

#: Seconds of clearing lease (renewed every second) and the slow round's time limit.
LEASE_S, TIME_LIMIT_S = 3, 8


@dataclass
class Pair:
    """Two servers on one database, each seen through an :class:`Exchange`."""

    a: Exchange
    b: Exchange

    def by_pid(self, pid: int) -> Exchange:
        return next(e for e in (self.a, self.b)
                    if e.server.process is not None and e.server.process.pid == pid)


@pytest.fixture
def pair(tmp_path: Path, databases: Databases) -> Iterator[Pair]:
    url = databases.fresh("pair")
    tokens = init_exchange(url, pl.read_csv(W27 / "sites.csv")["site_id"])
    args = ("--clearing-lease", str(LEASE_S))
    servers = [Server(url, tmp_path / f"server-{n}.log", args=args).start() for n in "ab"]
    a, b = (Exchange(server, url, tokens) for server in servers)
    try:
        yield Pair(a, b)
    finally:
        for exchange in (a, b):
            exchange.close()
            exchange.server.stop()


def _run(url: str, round_id: str) -> sa.Row[tuple[object, ...]]:
    return query(url, sa.select(t.round_runs).where(t.round_runs.c.round_id == round_id))[0]


def _pid(worker_id: object) -> int:
    return int(str(worker_id).split(":")[1])  # host:pid:nonce


def _ledger_lines(url: str, round_id: str) -> list[tuple[str, int]]:
    return [tuple(r) for r in query(url, sa.select(ledger_postings.c.posting_id,
                                                   ledger_postings.c.amount_cents)
                                    .where(ledger_postings.c.round_id == round_id))]


def _open_with_bids(pair: Pair, bids: int, time_limit_s: float, seed: int) -> str:
    answer = pair.a.client("planner").post("/v1/rounds", json={
        "window_start_utc": WINDOW[0], "window_end_utc": WINDOW[1],
        "carbon_price_eur_per_t": 80.0, "carbon_signal": "direct",
        "time_limit_s": time_limit_s})
    assert answer.status_code == 201, answer.text
    round_id = str(answer.json()["round_id"])
    rng = random.Random(seed)
    for i in range(bids):  # alternately through either process
        via = pair.a if i % 2 else pair.b
        body = bid_body(f"job-{i}", gpus=rng.choice((8, 16, 24)),
                        value_eur=float(rng.randint(2000, 40000)),
                        release_utc=WINDOW[0], deadline_utc=WINDOW[1],
                        allowed_jurisdictions=["*"],
                        options=[{"gpu_type": "H100", "hours": rng.randint(4, 20)},
                                 {"gpu_type": "A100", "hours": rng.randint(8, 30)}])
        who = rng.choice(("member_kr", "member_de"))
        posted = via.client(who).post(f"/v1/rounds/{round_id}/bids", json=body)
        assert posted.status_code == 201, posted.text
    return round_id


def test_either_process_serves_and_exactly_one_clears(pair: Pair) -> None:
    sites = pl.read_csv(W27 / "sites.csv")
    _report_every_site(pair.a, sites.head(7))
    _report_every_site(pair.b, sites.tail(7))
    url = pair.a.db_url
    assert query(url, sa.select(sa.func.count()).select_from(t.telemetry_reports)
                 )[0][0] == sites.height
    round_id = _open_with_bids(pair, bids=12, time_limit_s=2, seed=1)
    # Both see the same sealed bids; either closes; one of the two workers clears.
    mine = [b["bid_id"] for b in pair.b.client("member_kr").get(
        f"/v1/rounds/{round_id}/bids").json()]
    assert mine == [b["bid_id"] for b in pair.a.client("member_kr").get(
        f"/v1/rounds/{round_id}/bids").json()]
    closed = pair.b.client("planner").post(f"/v1/rounds/{round_id}/close")
    assert closed.status_code == 200, closed.text
    done = _wait_until_done(pair.a, round_id)
    assert done["state"] == "cleared", done.get("reason")
    run = _run(url, round_id)
    assert run.attempts == 1
    assert _pid(run.worker_id) in {e.server.process.pid for e in (pair.a, pair.b)
                                   if e.server.process is not None}
    lines = _ledger_lines(url, round_id)
    assert lines and sum(c for _, c in lines) == 0
    assert pair.a.client("treasurer").get(f"/v1/rounds/{round_id}/ledger").json() == \
        pair.b.client("treasurer").get(f"/v1/rounds/{round_id}/ledger").json()


def test_the_other_process_finishes_a_round_whose_clearer_died(pair: Pair) -> None:
    _report_every_site(pair.a, pl.read_csv(W27 / "sites.csv"))
    url = pair.a.db_url
    round_id = _open_with_bids(pair, bids=80, time_limit_s=TIME_LIMIT_S, seed=5)
    assert pair.a.client("planner").post(f"/v1/rounds/{round_id}/close").status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = pair.a.client("planner").get(f"/v1/rounds/{round_id}").json()
        if found["state"] == "clearing" and found.get("progress") not in (None, "claimed"):
            break
        time.sleep(0.05)
    time.sleep(1.0)
    assert pair.a.client("planner").get(f"/v1/rounds/{round_id}").json()["state"] == "clearing"
    first = _run(url, round_id).worker_id
    clearer = pair.by_pid(_pid(first))
    survivor = pair.b if clearer is pair.a else pair.a
    clearer.server.kill()

    done = _wait_until_done(survivor, round_id, timeout_s=LEASE_S + TIME_LIMIT_S + 60)
    assert done["state"] == "cleared", done.get("reason")
    run = _run(url, round_id)
    assert run.attempts == 2 and run.worker_id != first
    assert survivor.server.process is not None
    assert _pid(run.worker_id) == survivor.server.process.pid
    lines = _ledger_lines(url, round_id)
    assert len(lines) == len({p for p, _ in lines}) and sum(c for _, c in lines) == 0

"""One real exchange server for the exchange tests (started once per session: each start
costs about two seconds); tests that kill or restart a server start their own. Also a
market of every site and a round cleared on it (``market_exchange``, ``cleared``: one per
test module that uses them, so a module may settle its round)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.snapshot import read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import create_token, revoke_token
from tests.conftest import W27
from tests.databases import Databases
from tests.exchange.server import Server, bid_body, init_exchange, round_body


@dataclass
class Exchange:
    """The running server, its database URL and a token per role name (plus ``revoked``)."""

    server: Server
    db_url: str
    tokens: dict[str, str]
    _clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def client(self, who: str | None = None) -> httpx.Client:
        """The session's client sending the token named ``who`` (none when None); kept open,
        because making an httpx client (its TLS context) costs tens of milliseconds."""
        if who not in self._clients:
            self._clients[who] = self.server.client(self.tokens[who] if who else None)
        return self._clients[who]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def restart(self) -> None:
        """Start the (killed or stopped) server again, on a new port."""
        self.close()
        self.server.start()


@contextmanager
def serving(url: str, folder: Path, tokens: dict[str, str],
            args: tuple[str, ...] = ()) -> Iterator[Exchange]:
    """A real server on the database ``url`` (log in ``folder``; more ``serve`` options in
    ``args``), stopped on exit."""
    server = Server(url, folder / "server.log", args=args).start()
    running = Exchange(server, url, tokens)
    try:
        yield running
    finally:
        running.close()
        server.stop()


@pytest.fixture(scope="session")
def exchange(tmp_path_factory: pytest.TempPathFactory,
             databases: Databases) -> Iterator[Exchange]:
    """One server for the session, on each backend in turn."""
    folder = tmp_path_factory.mktemp("exchange")
    url = databases.fresh("exchange")
    tokens = init_exchange(url)
    with ExchangeStore.open(url) as store:
        info, secret = create_token(store, "admin", None, datetime.now(UTC))
        revoke_token(store, info.token_id, datetime.now(UTC))
    tokens["revoked"] = secret
    with serving(url, folder, tokens) as running:
        yield running


@pytest.fixture(scope="session")
def open_round(exchange: Exchange) -> str:
    """The id of a round opened by the planner (open, a week from 2023-07-03)."""
    answer = exchange.client("planner").post("/v1/rounds", json=round_body())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["round_id"])


# ------------------------------------------- a market of every site, and a cleared round

WINDOW = ("2023-07-03T00:00Z", "2023-07-05T00:00Z")  # 48 hours
HOURS = 48
#: Free GPUs reported per pool and hour are capped here, so the bids compete for them.
FREE_CAP = 24


@contextmanager
def market_serving(url: str, folder: Path, args: tuple[str, ...] = ()) -> Iterator[Exchange]:
    """A server on the fresh database ``url`` (its log in ``folder``) with a token per site,
    every site having reported the window's 48 hours from the bundled W27 market (direct
    intensities)."""
    sites = pl.read_csv(W27 / "sites.csv")
    tokens = init_exchange(url, sites["site_id"])
    with serving(url, folder, tokens, args) as running:
        _report_every_site(running, sites)
        yield running


@pytest.fixture(scope="module")
def market_exchange(tmp_path_factory: pytest.TempPathFactory,
                    databases: Databases) -> Iterator[Exchange]:
    """:func:`market_serving` for a test module, on each backend in turn."""
    with market_serving(databases.fresh("rounds"), tmp_path_factory.mktemp("rounds")) as running:
        yield running


def _report_every_site(ex: Exchange, sites: pl.DataFrame) -> None:
    grid = pl.read_csv(W27 / "grid.csv").filter(pl.col("hour_utc") < WINDOW[1])
    capacity = pl.read_csv(W27 / "capacity.csv").filter(pl.col("hour_utc") < WINDOW[1])
    for site_id, zone in sites.select("site_id", "zone").iter_rows():
        free = capacity.filter(pl.col("site_id") == site_id)
        hours = []
        for hour, carbon, price in (grid.filter(pl.col("zone") == zone)
                                    .select("hour_utc", "carbon_direct_g_per_kwh",
                                            "price_eur_per_mwh").iter_rows()):
            at = free.filter(pl.col("hour_utc") == hour)
            hours.append({"hour_utc": hour, "carbon_g_per_kwh": carbon,
                          "price_eur_per_mwh": price,
                          "gpus_free": {g: min(n, FREE_CAP) for g, n in
                                        at.select("gpu_type", "gpus_available").iter_rows()}})
        assert len(hours) == HOURS
        answer = ex.client(f"site:{site_id}").post(f"/v1/sites/{site_id}/telemetry", json={
            "report_id": f"w27-{site_id}", "zone": zone, "signal": "direct",
            "provider": "csv-replay", "measured_at_utc": "2023-07-02T23:00:00Z",
            "hours": hours})
        assert answer.status_code == 201, answer.text


def _open(ex: Exchange, start: str = WINDOW[0], end: str = WINDOW[1]) -> str:
    answer = ex.client("planner").post("/v1/rounds", json={
        "window_start_utc": start, "window_end_utc": end, "carbon_price_eur_per_t": 80.0,
        "carbon_signal": "direct"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["round_id"])


def _bid(ex: Exchange, who: str, round_id: str, bid_id: str, **changes: Any) -> None:
    body = bid_body(bid_id, **({"release_utc": WINDOW[0], "deadline_utc": WINDOW[1],
                                "allowed_jurisdictions": ["*"]} | changes))
    answer = ex.client(who).post(f"/v1/rounds/{round_id}/bids", json=body)
    assert answer.status_code == 201, answer.text


def _wait_until_done(ex: Exchange, round_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        found = ex.client("planner").get(f"/v1/rounds/{round_id}").json()
        seen.append(found.get("progress"))
        if found["state"] in ("cleared", "failed"):
            return dict(found)
        time.sleep(0.2)
    raise AssertionError(f"round {round_id} not done in {timeout_s} s; progress seen: {seen}")


@pytest.fixture(scope="module")
def cleared(market_exchange: Exchange) -> str:
    """A round of five bids (one withdrawn) by KR and DE, closed and cleared."""
    ex = market_exchange
    round_id = _open(ex)
    _bid(ex, "member_kr", round_id, "kr-big", gpus=24, value_eur=60000.0,
         options=[{"gpu_type": "H100", "hours": 24}])
    _bid(ex, "member_kr", round_id, "kr-small", gpus=8, value_eur=9000.0)
    _bid(ex, "member_kr", round_id, "kr-gone", gpus=8, value_eur=9000.0)
    _bid(ex, "member_de", round_id, "kr-big", gpus=16, value_eur=30000.0,
         allowed_jurisdictions=["DE", "GB"])
    _bid(ex, "member_de", round_id, "de-cheap", gpus=16, value_eur=1.0)
    assert ex.client("member_kr").delete(f"/v1/rounds/{round_id}/bids/kr-gone"
                                         ).status_code == 200
    closed = ex.client("planner").post(f"/v1/rounds/{round_id}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] in ("gate_closed", "clearing", "cleared")
    done = _wait_until_done(ex, round_id)
    assert done["state"] == "cleared", done["reason"]
    assert done["progress"] == "done"
    return round_id


# ------------------------------------------------------- rounds in a state a test needs

#: The worker id of clearings run in the test process.
TEST_WORKER = "test:0:0"
#: A lease that never runs out.
FOREVER = "9999-01-01T00:00:00.000Z"


def copy_round(ex: Exchange, source: str, *, state: str, edit: dict[str, str] | None = None,
               worker_id: str = TEST_WORKER, lease_until_utc: str = FOREVER,
               attempts: int = 1) -> str:
    """A copy of round ``source`` (its bids and bundle, files replaced by ``edit``) in
    ``state``, its run held by ``worker_id`` until ``lease_until_utc`` after ``attempts``
    takes; a ``clearing`` copy held by :data:`TEST_WORKER` for ever keeps the server's worker
    away from it, one whose lease has run out is the round of a worker that died."""
    new_id = f"{source}-copy-{time.monotonic_ns()}"
    engine = sa.create_engine(ex.db_url)
    try:
        with engine.begin() as conn:
            row = dict(conn.execute(sa.select(t.rounds).where(t.rounds.c.round_id == source)
                                    ).mappings().one())
            conn.execute(t.rounds.insert().values(**(row | {"round_id": new_id,
                                                            "state": state})))
            bids = [dict(b) | {"round_id": new_id} for b in conn.execute(
                sa.select(t.bids).where(t.bids.c.round_id == source)).mappings()]
            conn.execute(t.bids.insert(), bids)
            files = read_bundle_rows(conn, source) | (edit or {})
            conn.execute(t.round_bundles.insert(), [
                {"round_id": new_id, "name": n, "content": c} for n, c in files.items()])
            conn.execute(t.round_runs.insert().values(
                round_id=new_id, progress="claimed", claimed_at_utc="2023-07-01T00:00:00.000Z",
                worker_id=worker_id, lease_until_utc=lease_until_utc, attempts=attempts))
    finally:
        engine.dispose()
    return new_id

"""Clearing rounds in the background: take a closed round, clear it, store it atomically.

:class:`ClearingWorker` is one daemon thread per server process (started and stopped by the
app's lifespan). It polls for rounds to take under a lease (:mod:`gridbridge.exchange.lease`:
a conditional UPDATE, so however many workers poll one database exactly one takes a round,
and a round whose worker died is taken over once its lease runs out). :func:`clear_round`
then, renewing the lease meanwhile,

1. reads the stored bundle and validates it (:func:`gridbridge.bundle.validate_bundle`);
2. clears it with :class:`optim.clearing.Round` (time limit from its ``market.toml``),
   writing each phase's name to ``exchange_round_runs.progress`` as it starts;
3. in ONE transaction that first checks the lease is still held, stores placements (with
   payments), prices, rejected bids (with the reason; bids the snapshot left out too), the
   summary, and the round's ledger lines (:func:`gridbridge.settlement.postings.round_postings`,
   stamped with the window start so a re-run gives identical lines), and sets the round
   ``cleared``.

Any exception sets the round ``failed`` with the reason; the results transaction rolled back,
so nothing of the round's results is stored. A worker that lost its lease stores nothing.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import tomllib
from datetime import datetime
from typing import Any

import orjson
import polars as pl
import sqlalchemy as sa

from gridbridge.bundle import validate_bundle
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import Clock, instant_text
from gridbridge.exchange.lease import (
    DEFAULT_LEASE_S,
    Heartbeat,
    LeaseLost,
    claim_round,
    new_worker_id,
    renew_lease,
    require_lease,
)
from gridbridge.exchange.metrics import Metrics
from gridbridge.exchange.snapshot import CONFIG_NAME, EXCLUDED_NAME, read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.hours import format_hour
from gridbridge.ledger.store import post_round_on
from gridbridge.settlement.postings import round_postings
from optim.clearing import Clearing, Round
from optim.market import TABLES, Market
from optim.options import SolveOptions

__all__ = ["DEFAULT_TIME_LIMIT_S", "ClearingWorker", "clear_round"]

#: Solver time limit (seconds) of a round whose market.toml names none.
DEFAULT_TIME_LIMIT_S = 30.0
_log = logging.getLogger(__name__)
# Longest reason stored for a failed round (a bundle error can list many problems).
_REASON_CHARS = 4000


def _market(files: dict[str, str], round_id: str) -> Market:
    tables = {name: pl.read_csv(io.StringIO(files[f"{name}.csv"]), infer_schema=False)
              for name in TABLES}
    config = tomllib.loads(files[CONFIG_NAME])
    market, _warnings = validate_bundle(tables, config, bundle=f"of round {round_id}")
    return market


def _split_bid(bundle_bid_id: str) -> tuple[str, str]:
    member, _, bid_id = bundle_bid_id.partition(":")
    return member, bid_id


def _result_rows(round_id: str, clearing: Clearing,
                 excluded: pl.DataFrame) -> dict[sa.Table, list[dict[str, Any]]]:
    placements = []
    for row in clearing.placements.iter_rows(named=True):
        member, bid_id = _split_bid(row["bid_id"])
        placements.append({
            **{c.name: row[c.name] for c in t.placements.columns
               if c.name in row and c.name not in ("member", "bid_id", "start_utc", "end_utc")},
            "round_id": round_id, "member": member, "bid_id": bid_id,
            "start_utc": format_hour(row["start_utc"]), "end_utc": format_hour(row["end_utc"])})
    rejected = []
    for row in clearing.rejected.iter_rows(named=True):
        member, bid_id = _split_bid(row["bid_id"])
        rejected.append({"round_id": round_id, "member": member, "bid_id": bid_id,
                         "reason": row["reason"], "detail": row.get("detail"),
                         "lost_opportunity_eur": row.get("lost_opportunity_eur")})
    for row in excluded.iter_rows(named=True):
        member, bid_id = _split_bid(row["bid_id"])
        rejected.append({"round_id": round_id, "member": member, "bid_id": bid_id,
                         "reason": row["reason"], "detail": row["detail"],
                         "lost_opportunity_eur": None})
    prices = [{"round_id": round_id, "site_id": r["site_id"], "gpu_type": r["gpu_type"],
               "hour_utc": format_hour(r["hour_utc"]),
               "capacity_price_eur_per_gpu_hour": r["capacity_price_eur_per_gpu_hour"]}
              for r in clearing.prices.iter_rows(named=True)]
    return {t.placements: placements, t.rejected: rejected, t.prices: prices}


def _store_results(store: ExchangeStore, round_id: str, worker_id: str, market: Market,
                   clearing: Clearing, excluded: pl.DataFrame, seconds: float,
                   at: datetime) -> None:
    postings = round_postings(round_id, market.config.window_start_utc, clearing.placements,
                              market.members)
    rows = _result_rows(round_id, clearing, excluded)
    with store.write() as conn:
        require_lease(conn, round_id, worker_id)  # first: a lost lease writes nothing
        for table, values in rows.items():
            for start in range(0, len(values), 1000):  # bounded statements
                conn.execute(table.insert(), values[start:start + 1000])
        if postings.height:
            post_round_on(conn, round_id, postings, source=f"exchange round {round_id}")
        _finish(conn, round_id, clearing.summary(), seconds, at)


def _finish(conn: sa.Connection, round_id: str, summary: dict[str, object], seconds: float,
            at: datetime) -> None:
    conn.execute(t.round_runs.update().where(t.round_runs.c.round_id == round_id).values(
        progress="done", finished_at_utc=instant_text(at), solve_seconds=seconds,
        summary_json=orjson.dumps(summary).decode()))
    done = conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                                t.rounds.c.state == "clearing")
                        .values(state="cleared", updated_at_utc=instant_text(at)))
    if done.rowcount != 1:
        raise RuntimeError(f"round {round_id} left state clearing while it was cleared")


def _fail(store: ExchangeStore, round_id: str, worker_id: str, reason: str,
          at: datetime) -> None:
    with store.write() as conn:
        require_lease(conn, round_id, worker_id)
        conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                             t.rounds.c.state == "clearing")
                     .values(state="failed", reason=reason[:_REASON_CHARS],
                             updated_at_utc=instant_text(at)))
        conn.execute(t.round_runs.update().where(t.round_runs.c.round_id == round_id)
                     .values(progress="failed", finished_at_utc=instant_text(at)))


def clear_round(store: ExchangeStore, round_id: str, clock: Clock,
                metrics: Metrics | None = None, *, worker_id: str,
                lease_s: float = DEFAULT_LEASE_S) -> str:
    """Clear the round ``round_id`` that ``worker_id`` holds (state ``clearing``; module doc,
    steps 1-3), renewing the lease (:class:`~gridbridge.exchange.lease.Heartbeat`) meanwhile.

    Returns the round's new state, ``cleared`` or ``failed``, or ``lost`` when the lease was
    lost (another worker took the round; nothing was stored); never raises for a bad round
    (the reason is stored). Adds the solve's wall seconds to ``metrics``.
    """
    def progress(step: str) -> None:
        renew_lease(store, round_id, worker_id, clock(), lease_s, progress=step)

    try:
        with Heartbeat(store, round_id, worker_id, clock, lease_s):
            with store.read() as conn:
                files = read_bundle_rows(conn, round_id)
            market = _market(files, round_id)
            excluded = pl.read_csv(
                io.StringIO(files.get(EXCLUDED_NAME) or "bid_id,reason,detail\n"),
                infer_schema=False)
            limit = market.config.time_limit_s or DEFAULT_TIME_LIMIT_S
            started = time.perf_counter()
            try:
                clearing = Round(market, SolveOptions(time_limit_s=limit),
                                 progress=progress).clear()
            finally:
                seconds = time.perf_counter() - started
                if metrics is not None:
                    metrics.add("gridbridge_solve_seconds_total", seconds)
            progress("storing")
            _store_results(store, round_id, worker_id, market, clearing, excluded, seconds,
                           clock())
    except LeaseLost as exc:
        _log.error("round %s: %s; its results were not stored", round_id, exc)
        return "lost"
    except Exception as exc:
        _log.exception("round %s failed", round_id)
        try:
            _fail(store, round_id, worker_id, f"clearing failed: {type(exc).__name__}: {exc}",
                  clock())
        except LeaseLost:
            return "lost"
        return "failed"
    return "cleared"


class ClearingWorker:
    """A daemon thread that clears closed rounds one at a time (see the module doc)."""

    def __init__(self, store: ExchangeStore, clock: Clock, metrics: Metrics, *,
                 poll_s: float = 0.2, lease_s: float = DEFAULT_LEASE_S) -> None:
        """``poll_s``: seconds between looks for rounds when there is none; ``lease_s``:
        seconds the worker holds a round without renewing (a round whose worker died is
        taken over that long after its last renewal)."""
        self._store, self._clock, self._metrics = store, clock, metrics
        self._poll_s, self._lease_s = poll_s, lease_s
        self.worker_id = new_worker_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridbridge-clearing",
                                        daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout_s`` seconds (a solve in progress
        is not interrupted; the daemon thread dies with the process)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                round_id = claim_round(self._store, self._clock(), self.worker_id,
                                       self._lease_s)
                if round_id is not None:
                    clear_round(self._store, round_id, self._clock, self._metrics,
                                worker_id=self.worker_id, lease_s=self._lease_s)
                    continue
            except Exception:
                _log.exception("clearing worker: polling failed; retrying")
            self._stop.wait(self._poll_s)

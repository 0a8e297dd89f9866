"""Clearing rounds in the background: claim a closed round, clear it, store it atomically.

:class:`ClearingWorker` is one daemon thread per server process (started and stopped by the
app's lifespan). It polls for rounds in ``gate_closed`` that have a stored bundle and takes
one with a conditional UPDATE (``gate_closed`` -> ``clearing`` only where the state is still
``gate_closed``), so however many workers poll one database, exactly one takes a round (the
later multi-process lease builds on this). :func:`clear_round` then

1. reads the stored bundle and validates it (:func:`gridbridge.bundle.validate_bundle`);
2. clears it with :class:`optim.clearing.Round` (time limit from its ``market.toml``),
   writing each phase's name to ``exchange_round_runs.progress`` as it starts;
3. in ONE transaction stores placements (with payments), prices, rejected bids (with the
   reason; bids the snapshot left out too), the summary, and the round's ledger lines
   (:func:`gridbridge.settlement.postings.round_postings`, stamped with the window start so a
   re-run gives identical lines), and sets the round ``cleared``.

Any exception sets the round ``failed`` with the reason; the results transaction rolled back,
so nothing of the round's results is stored. A round left in ``clearing`` by a process that
died stays there (the lease that would hand it to another worker comes later).
"""

from __future__ import annotations

import io
import logging
import threading
import time
import tomllib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import polars as pl
import sqlalchemy as sa

from gridbridge.bundle import validate_bundle
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import Clock, instant_text
from gridbridge.exchange.metrics import Metrics
from gridbridge.exchange.snapshot import CONFIG_NAME, EXCLUDED_NAME, read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.hours import format_hour
from gridbridge.ledger.store import post_round_on
from gridbridge.settlement.postings import round_postings
from optim.clearing import Clearing, Round
from optim.market import TABLES, Market
from optim.options import SolveOptions

__all__ = ["DEFAULT_TIME_LIMIT_S", "ClearingWorker", "claim_round", "clear_round"]

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


def claim_round(store: ExchangeStore, at: datetime) -> str | None:
    """Take one ``gate_closed`` round with a stored bundle (oldest window first): its id, now
    ``clearing``, or None when there is none (or another worker took it first)."""
    with store.write() as conn:
        has_bundle = sa.exists().where(t.round_bundles.c.round_id == t.rounds.c.round_id)
        round_id = conn.execute(
            sa.select(t.rounds.c.round_id).where(t.rounds.c.state == "gate_closed", has_bundle)
            .order_by(t.rounds.c.window_start_utc, t.rounds.c.round_id).limit(1)
        ).scalar_one_or_none()
        if round_id is None:
            return None
        taken = conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                                     t.rounds.c.state == "gate_closed")
                             .values(state="clearing", updated_at_utc=instant_text(at)))
        if taken.rowcount != 1:
            return None
        conn.execute(t.round_runs.delete().where(t.round_runs.c.round_id == round_id))
        conn.execute(t.round_runs.insert().values(round_id=round_id, progress="claimed",
                                                  claimed_at_utc=instant_text(at)))
    return str(round_id)


def _set_progress(store: ExchangeStore, round_id: str, progress: str) -> None:
    with store.write() as conn:
        conn.execute(t.round_runs.update().where(t.round_runs.c.round_id == round_id)
                     .values(progress=progress[:100]))


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


def _store_results(store: ExchangeStore, round_id: str, market: Market, clearing: Clearing,
                   excluded: pl.DataFrame, seconds: float, at: datetime) -> None:
    postings = round_postings(round_id, market.config.window_start_utc, clearing.placements,
                              market.members)
    rows = _result_rows(round_id, clearing, excluded)
    with store.write() as conn:
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


def _fail(store: ExchangeStore, round_id: str, reason: str, at: datetime) -> None:
    with store.write() as conn:
        conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                             t.rounds.c.state == "clearing")
                     .values(state="failed", reason=reason[:_REASON_CHARS],
                             updated_at_utc=instant_text(at)))
        conn.execute(t.round_runs.update().where(t.round_runs.c.round_id == round_id)
                     .values(progress="failed", finished_at_utc=instant_text(at)))


def clear_round(store: ExchangeStore, round_id: str, clock: Clock,
                metrics: Metrics | None = None) -> str:
    """Clear the claimed round ``round_id`` (state ``clearing``; module doc, steps 1-3).

    Returns the round's new state, ``cleared`` or ``failed``; never raises for a bad round
    (the reason is stored). Adds the solve's wall seconds to ``metrics``.
    """
    try:
        with store.read() as conn:
            files = read_bundle_rows(conn, round_id)
        market = _market(files, round_id)
        excluded = pl.read_csv(io.StringIO(files.get(EXCLUDED_NAME) or "bid_id,reason,detail\n"),
                               infer_schema=False)
        limit = market.config.time_limit_s or DEFAULT_TIME_LIMIT_S
        started = time.perf_counter()
        try:
            clearing = Round(market, SolveOptions(time_limit_s=limit),
                             progress=lambda step: _set_progress(store, round_id, step)).clear()
        finally:
            seconds = time.perf_counter() - started
            if metrics is not None:
                metrics.add("gridbridge_solve_seconds_total", seconds)
        _set_progress(store, round_id, "storing")
        _store_results(store, round_id, market, clearing, excluded, seconds, clock())
    except Exception as exc:
        _log.exception("round %s failed", round_id)
        _fail(store, round_id, f"clearing failed: {type(exc).__name__}: {exc}", clock())
        return "failed"
    return "cleared"


class ClearingWorker:
    """A daemon thread that clears closed rounds one at a time (see the module doc)."""

    def __init__(self, store: ExchangeStore, clock: Clock, metrics: Metrics, *,
                 poll_s: float = 0.2,
                 clear: Callable[[ExchangeStore, str, Clock, Metrics], str] = clear_round
                 ) -> None:
        """``poll_s``: seconds between looks for closed rounds when there is none."""
        self._store, self._clock, self._metrics = store, clock, metrics
        self._poll_s, self._clear = poll_s, clear
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
                round_id = claim_round(self._store, self._clock())
                if round_id is not None:
                    self._clear(self._store, round_id, self._clock, self._metrics)
                    continue
            except Exception:
                _log.exception("clearing worker: polling failed; retrying")
            self._stop.wait(self._poll_s)

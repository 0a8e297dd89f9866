"""The clearing lease: which worker clears a round, and a round outliving its worker.

A worker takes a round by a conditional UPDATE in one write transaction, so however many
workers (threads or processes) poll one database, exactly one takes it:

* a ``gate_closed`` round with a stored bundle becomes ``clearing``, with a fresh
  ``exchange_round_runs`` row naming the worker (``worker_id``, ``host:pid:nonce``), the
  lease's end (``lease_until_utc``, an instant) and ``attempts = 1``;
* a ``clearing`` round whose lease has run out — its worker's process died, or lost the
  database for longer than the lease — is taken over: the run row gets the new worker, a new
  lease and ``attempts + 1``, conditional on the lease the taker saw, so two takers cannot
  both win. After :data:`MAX_ATTEMPTS` takes the round fails instead, with the reason: a
  round that kills its worker every time must not kill every worker in turn.

While it clears, the holder renews its lease (:class:`Heartbeat`, every third of the lease).
Everything it stores — results, ledger lines, the round's final state — is written in a
transaction that first checks it still holds the lease (:func:`require_lease`), so a worker
that lost its lease (and whose round another worker took) stores nothing: a round is never
posted twice. Results are written in one transaction at the end, so a worker that died left
nothing to clean up.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import Clock, instant_text
from gridbridge.exchange.storage import ExchangeStore

__all__ = ["DEFAULT_LEASE_S", "MAX_ATTEMPTS", "Heartbeat", "LeaseLost", "claim_round",
           "new_worker_id", "renew_lease", "require_lease"]

#: Seconds a worker holds a round without renewing (renewed every third of it).
DEFAULT_LEASE_S = 60.0
#: Takes of one round before it fails instead of being taken again.
MAX_ATTEMPTS = 3
_log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """The worker no longer holds the round's lease (another worker took the round)."""


def new_worker_id() -> str:
    """``host:pid:nonce``: unique per worker, and says which process it was."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _until(at: datetime, lease_s: float) -> str:
    return instant_text(at + timedelta(seconds=lease_s))


def claim_round(store: ExchangeStore, at: datetime, worker_id: str,
                lease_s: float = DEFAULT_LEASE_S) -> str | None:
    """Take one round (see the module doc; oldest window first) for ``worker_id`` until
    ``at + lease_s``: its id, or None when there is none to take (or another worker took it
    first, or the one found had used its attempts and was failed)."""
    r, rr = t.rounds, t.round_runs
    now = instant_text(at)
    with store.write() as conn:
        has_bundle = sa.exists().where(t.round_bundles.c.round_id == r.c.round_id)
        expired = sa.or_(rr.c.lease_until_utc.is_(None), rr.c.lease_until_utc < now)
        found = conn.execute(
            sa.select(r.c.round_id, r.c.state, rr.c.attempts, rr.c.lease_until_utc,
                      rr.c.worker_id)
            .select_from(r.outerjoin(rr, rr.c.round_id == r.c.round_id))
            .where(sa.or_(sa.and_(r.c.state == "gate_closed", has_bundle),
                          sa.and_(r.c.state == "clearing", expired)))
            .order_by(r.c.window_start_utc, r.c.round_id).limit(1)).mappings().first()
        if found is None:
            return None
        round_id = str(found["round_id"])
        if found["state"] == "gate_closed":
            return _take_closed(conn, round_id, at, worker_id, lease_s)
        return _take_over(conn, found, at, worker_id, lease_s)


def _take_closed(conn: sa.Connection, round_id: str, at: datetime, worker_id: str,
                 lease_s: float) -> str | None:
    taken = conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                                 t.rounds.c.state == "gate_closed")
                         .values(state="clearing", updated_at_utc=instant_text(at)))
    if taken.rowcount != 1:
        return None
    conn.execute(t.round_runs.delete().where(t.round_runs.c.round_id == round_id))
    conn.execute(t.round_runs.insert().values(
        round_id=round_id, progress="claimed", claimed_at_utc=instant_text(at),
        worker_id=worker_id, lease_until_utc=_until(at, lease_s), attempts=1))
    return round_id


def _take_over(conn: sa.Connection, found: sa.RowMapping, at: datetime, worker_id: str,
               lease_s: float) -> str | None:
    rr = t.round_runs
    round_id = str(found["round_id"])
    seen = rr.c.lease_until_utc.is_(None) if found["lease_until_utc"] is None else (
        rr.c.lease_until_utc == found["lease_until_utc"])
    attempts = int(found["attempts"] or 0)
    if attempts >= MAX_ATTEMPTS:
        reason = (f"clearing failed: {attempts} workers took the round and none finished "
                  f"(the last, {found['worker_id']}, stopped renewing its lease: its process "
                  "died or lost the database) — fix: look at the exchange's log for why, then "
                  "open a new round")
        gone = conn.execute(rr.update().where(rr.c.round_id == round_id, seen)
                            .values(progress="failed", finished_at_utc=instant_text(at)))
        if gone.rowcount == 1:
            conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                                 t.rounds.c.state == "clearing")
                         .values(state="failed", reason=reason, updated_at_utc=instant_text(at)))
            _log.error("round %s failed: %s", round_id, reason)
        return None
    taken = conn.execute(rr.update().where(rr.c.round_id == round_id, seen).values(
        progress="claimed", claimed_at_utc=instant_text(at), worker_id=worker_id,
        lease_until_utc=_until(at, lease_s), attempts=attempts + 1))
    if taken.rowcount != 1:
        return None
    _log.warning("round %s taken over from %s (its lease ran out); attempt %d of %d",
                 round_id, found["worker_id"], attempts + 1, MAX_ATTEMPTS)
    return round_id


def _held(round_id: str, worker_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(t.round_runs.c.round_id == round_id, t.round_runs.c.worker_id == worker_id)


def renew_lease(store: ExchangeStore, round_id: str, worker_id: str, at: datetime,
                lease_s: float = DEFAULT_LEASE_S, *, progress: str | None = None) -> bool:
    """Extend ``worker_id``'s lease on the round to ``at + lease_s`` (and set ``progress``
    when given); False when the worker no longer holds it."""
    values = {"lease_until_utc": _until(at, lease_s)}
    if progress is not None:
        values["progress"] = progress[:100]
    with store.write() as conn:
        done = conn.execute(t.round_runs.update().where(_held(round_id, worker_id))
                            .values(**values))
    return done.rowcount == 1


def require_lease(conn: sa.Connection, round_id: str, worker_id: str) -> None:
    """Inside the caller's write transaction: raise :class:`LeaseLost` unless ``worker_id``
    still holds the round (the caller's writes then roll back)."""
    holder = conn.execute(sa.select(t.round_runs.c.worker_id)
                          .where(t.round_runs.c.round_id == round_id)).scalar_one_or_none()
    if holder != worker_id:
        raise LeaseLost(f"round {round_id} is held by {holder}, not by {worker_id}")


class Heartbeat:
    """A thread renewing a lease every third of ``lease_s`` seconds while the block runs."""

    def __init__(self, store: ExchangeStore, round_id: str, worker_id: str, clock: Clock,
                 lease_s: float = DEFAULT_LEASE_S,
                 renew: Callable[..., bool] = renew_lease) -> None:
        self._args = (store, round_id, worker_id)
        self._clock, self._lease_s, self._renew = clock, lease_s, renew
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{round_id}", daemon=True)
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                if not self._renew(*self._args, self._clock(), self._lease_s):
                    self.lost = True
                    _log.error("lost the lease on round %s", self._args[1])
                    return
            except Exception:  # the database may be back before the lease runs out
                _log.exception("renewing the lease on round %s failed; retrying",
                               self._args[1])

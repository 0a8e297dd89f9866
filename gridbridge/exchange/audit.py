"""The audit log: one row per state-changing call (POST, PUT, PATCH, DELETE), refused or
not — who (token id, role, subject; null when no valid token was given), what (method,
path, answer status), when (UTC instant) and the request id the answer carried in
``X-Request-ID``.

Written by :class:`gridbridge.exchange.middleware.RequestContext` once the answer's status
is known and before the answer is sent, so every answered call has its row; a process that
dies between committing a change and writing its row leaves that call unaudited (its client
got no answer either). Append-only.

:class:`AuditWriter` commits the rows of calls answered at the same moment together (group
commit): one writer thread takes every row waiting, writes them in one transaction and only
then lets their answers go. Under load that is one commit (one fsync) for many calls instead
of one each, and each call still waits until its own row is on disk.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.storage import ExchangeStore

__all__ = ["AuditEntry", "AuditWriter", "read_audit"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited call."""

    at_utc: str
    request_id: str
    token_id: str | None
    role: str | None
    subject: str | None
    method: str
    path: str
    status: int


class AuditWriter:
    """Group commit of audit rows (module doc); thread-safe. The thread starts with the
    first row; :meth:`close` writes what is waiting and stops it."""

    #: Most rows in one transaction.
    BATCH = 500

    def __init__(self, store: ExchangeStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[tuple[AuditEntry, Future[None]] | None] = \
            queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, entry: AuditEntry) -> Future[None]:
        """Queue ``entry``; the future is done once its row is committed, or carries the
        :class:`~gridbridge.errors.ExchangeError` that stopped it."""
        done: Future[None] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer",
                                                daemon=True)
                self._thread.start()
            self._queue.put((entry, done))
        return done

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._write(batch)
                    return
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[tuple[AuditEntry, Future[None]]]) -> None:
        try:
            with self._store.write() as conn:
                conn.execute(t.audit.insert(), [asdict(entry) for entry, _ in batch])
        except Exception as exc:  # to each waiting call, which logs it (the thread goes on)
            for _, done in batch:
                done.set_exception(exc)
        else:
            for _, done in batch:
                done.set_result(None)


def read_audit(store: ExchangeStore, limit: int = 1000) -> list[AuditEntry]:
    """The latest ``limit`` rows, oldest first."""
    columns = [t.audit.c[name] for name in AuditEntry.__dataclass_fields__]
    with store.read() as conn:
        rows = conn.execute(sa.select(*columns).order_by(t.audit.c.id.desc()).limit(limit))
        return [AuditEntry(*r) for r in reversed(list(rows))]

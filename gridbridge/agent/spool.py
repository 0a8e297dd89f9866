"""The agent's spool: an SQLite file where every report waits until the exchange has it.

Life of a report: :meth:`Spool.put` writes it (with its ``report_id``, generated once, and
the exact JSON body to send) before any attempt to send it; :meth:`Spool.ack` deletes it
only after the exchange acknowledged it (``stored`` or ``duplicate``); a report the exchange
refuses (4xx for its content) moves to the ``dead_letter`` table with the status and reason
(:meth:`Spool.dead_letter`), so it is neither lost nor retried forever. :meth:`Spool.pending`
lists the waiting reports oldest first, so a backlog drains in the order it was measured.

Crash safety: the file runs in WAL mode with ``synchronous=FULL``, and each of these steps
is one transaction, so once ``put`` returns the report survives a kill or power loss. The
agent may die at any moment: before ``put`` returns nothing was promised; between ``put``
and the POST the report is sent after the restart; between the exchange's answer and
``ack`` it is sent again and the exchange answers ``duplicate`` for the ``report_id`` it
already stored — so every report is stored exactly once, and a duplicate delivery is
harmless by design.

Metering: the ``metered`` table remembers every placement-hour (round, member, bid, hour) the agent
has metered; :meth:`Spool.put_metering` marks the hours in the same transaction that spools
the report, so an hour is metered once, even across crashes and restarts (a dead-lettered
report's hours stay marked: the operator decides, the agent does not re-meter them).

One agent process per spool file (the file is the agent's; two agents would send each
other's reports, which is still harmless, only wasteful).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

__all__ = ["SCHEMA_VERSION", "DeadLetter", "Spool", "SpoolEntry"]

#: 2 added the ``metered`` table; a version-1 file is upgraded in place when opened.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- spooling order: drained oldest first
    report_id    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,                      -- 'telemetry' or 'metering'
    path         TEXT NOT NULL,                      -- exchange path it is POSTed to
    body         TEXT NOT NULL,                      -- the JSON sent, byte for byte
    spooled_utc  TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq          INTEGER PRIMARY KEY,                -- its outbox seq
    report_id    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    path         TEXT NOT NULL,
    body         TEXT NOT NULL,
    spooled_utc  TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    refused_utc  TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    reason       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metered (
    round_id     TEXT NOT NULL,
    member       TEXT NOT NULL,                      -- bid ids are unique per member only
    bid_id       TEXT NOT NULL,
    hour_utc     TEXT NOT NULL,                      -- 2023-07-03T14:00Z, hour-beginning
    report_id    TEXT NOT NULL,                      -- the metering report that carries it
    PRIMARY KEY (round_id, member, bid_id, hour_utc)
);
"""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """A report waiting to be delivered."""

    report_id: str
    kind: str
    path: str
    body: str
    spooled_utc: str
    seq: int = 0
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A report the exchange refused, kept for the operator."""

    seq: int
    report_id: str
    kind: str
    path: str
    body: str
    spooled_utc: str
    attempts: int
    refused_utc: str
    status_code: int
    reason: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Spool:
    """The spool file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode; every change below opens its own explicit transaction.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO spool_meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
            version = db.execute(
                "SELECT value FROM spool_meta WHERE key = 'schema_version'").fetchone()[0]
            if int(version) < SCHEMA_VERSION:  # older files only lack tables created above
                db.execute("UPDATE spool_meta SET value = ? WHERE key = 'schema_version'",
                           (str(SCHEMA_VERSION),))
                version = str(SCHEMA_VERSION)
        if int(version) != SCHEMA_VERSION:
            self._db.close()
            from gridbridge.agent.errors import AgentConfigError

            raise AgentConfigError(f"{path}: spool schema version {version}, this agent "
                                   f"writes {SCHEMA_VERSION} — fix: drain it with the agent "
                                   "version that wrote it, or point [agent] spool elsewhere")

    @classmethod
    def open(cls, path: Path) -> Self:
        """Open (creating if needed) the spool at ``path``."""
        return cls(path)

    def close(self) -> None:
        """Close the file (everything is already committed)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, report_id: str, kind: str, path: str, body: str) -> SpoolEntry:
        """Spool a report (durable when this returns); a ``report_id`` already spooled or
        dead-lettered is left as it is."""
        spooled = _now()
        with self._transaction() as db:
            known = db.execute("SELECT 1 FROM dead_letter WHERE report_id = ?",
                               (report_id,)).fetchone()
            if not known:
                db.execute("INSERT OR IGNORE INTO outbox (report_id, kind, path, body, "
                           "spooled_utc) VALUES (?, ?, ?, ?, ?)",
                           (report_id, kind, path, body, spooled))
        return SpoolEntry(report_id, kind, path, body, spooled)

    def put_metering(self, report_id: str, path: str, body: str,
                     hours: Iterable[tuple[str, str, str, str]]) -> SpoolEntry:
        """Spool a metering report and mark its ``(round_id, member, bid_id, hour_utc)``
        hours as metered, in one transaction (durable when this returns).

        Raises :class:`sqlite3.IntegrityError` (nothing written) if an hour is already
        metered: callers filter with :meth:`metered` first."""
        spooled = _now()
        with self._transaction() as db:
            db.execute("INSERT INTO outbox (report_id, kind, path, body, spooled_utc) "
                       "VALUES (?, 'metering', ?, ?, ?)", (report_id, path, body, spooled))
            db.executemany("INSERT INTO metered (round_id, member, bid_id, hour_utc, "
                           "report_id) VALUES (?, ?, ?, ?, ?)",
                           [(*key, report_id) for key in hours])
        return SpoolEntry(report_id, "metering", path, body, spooled)

    def metered(self, round_ids: Iterable[str]) -> set[tuple[str, str, str, str]]:
        """The ``(round_id, member, bid_id, hour_utc)`` hours already metered in these
        rounds."""
        out: set[tuple[str, str, str, str]] = set()
        for round_id in set(round_ids):
            out.update(self._db.execute(
                "SELECT round_id, member, bid_id, hour_utc FROM metered WHERE round_id = ?",
                (round_id,)).fetchall())
        return out

    def pending(self, limit: int | None = None) -> list[SpoolEntry]:
        """Waiting reports, oldest first."""
        rows = self._db.execute(
            "SELECT report_id, kind, path, body, spooled_utc, seq, attempts, last_error "
            "FROM outbox ORDER BY seq LIMIT ?", (-1 if limit is None else limit,)).fetchall()
        return [SpoolEntry(*row) for row in rows]

    def count(self) -> int:
        """How many reports wait."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def ack(self, report_id: str) -> None:
        """The exchange has the report: forget it."""
        with self._transaction() as db:
            db.execute("DELETE FROM outbox WHERE report_id = ?", (report_id,))

    def record_failure(self, report_id: str, error: str) -> None:
        """Count a failed delivery attempt (the report keeps waiting)."""
        with self._transaction() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? "
                       "WHERE report_id = ?", (error[:2000], report_id))

    def dead_letter(self, report_id: str, status_code: int, reason: str) -> None:
        """Move a refused report from the outbox to ``dead_letter``, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO dead_letter (seq, report_id, kind, path, body, "
                "spooled_utc, attempts, refused_utc, status_code, reason) "
                "SELECT seq, report_id, kind, path, body, spooled_utc, attempts + 1, ?, ?, ? "
                "FROM outbox WHERE report_id = ?",
                (_now(), status_code, reason[:4000], report_id))
            db.execute("DELETE FROM outbox WHERE report_id = ?", (report_id,))

    def dead_letters(self) -> list[DeadLetter]:
        """Refused reports, oldest first."""
        rows = self._db.execute(
            "SELECT seq, report_id, kind, path, body, spooled_utc, attempts, refused_utc, "
            "status_code, reason FROM dead_letter ORDER BY seq").fetchall()
        return [DeadLetter(*row) for row in rows]

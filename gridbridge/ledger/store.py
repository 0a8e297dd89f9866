"""The settlement ledger's storage: double-entry, integer euro cents, append-only.

Stored with SQLAlchemy Core in a SQLite file by default (``sqlite:///gridbridge.db``,
relative to the current directory; ``sqlite:////abs/path.db`` for an absolute path) or in
PostgreSQL by URL (``postgresql+psycopg://user@host/dbname``); only portable Core
constructs are used, so the same code runs on both.

Tables (the exchange shares the database, hence the ``ledger_`` prefix):

* ``schema_version`` — one row per component (here ``component='ledger'``), created and
  upgraded by :meth:`Ledger.open`;
* ``ledger_rounds`` — one row per posted round (primary key ``round_id``);
* ``ledger_batches`` — one row per batch of corrections (primary key
  ``(round_id, batch_id)``);
* ``ledger_postings`` — the lines (primary key ``posting_id``, unique across the ledger);
  ``batch_id`` is null for the round's own lines.

Guarantees:

* Append-only: there is no method that updates or deletes.
* A round, or a batch of corrections, goes in as one transaction: all its lines and its
  ``ledger_rounds``/``ledger_batches`` row, or nothing. A repeat is refused by the primary
  key inside that transaction, so two processes racing to post the same round cannot both
  succeed, and retrying after an unclear failure can never post twice.
* Every posting sums to exactly 0 cents (:func:`~gridbridge.ledger.schema.validate_postings`),
  so every round, every account total over all rounds, and the ledger sum to 0.
* SQLite: every connection runs in WAL mode with ``synchronous=FULL`` (a posting that has
  returned is on disk and survives a power cut) and foreign keys enforced; write
  transactions start with ``BEGIN IMMEDIATE``, so writers queue (up to 30 s) instead of
  failing mid-transaction (the engine setup the exchange shares: :mod:`gridbridge.db`).

Signs: a positive ``amount_cents`` is money the account receives, negative money it pays.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import polars as pl
import sqlalchemy as sa

from gridbridge.db import (
    DEFAULT_URL,
    Database,
    create_or_upgrade,
    disposed_on_failure,
    open_engine,
    reason,
    schema_version_table,
    write_transaction,
)
from gridbridge.errors import LedgerError
from gridbridge.ledger.schema import POSTING_SCHEMA, empty_postings, validate_postings

__all__ = [
    "DEFAULT_URL",
    "LEDGER_SCHEMA_VERSION",
    "ROUNDS_SCHEMA",
    "Ledger",
    "ledger_batches",
    "ledger_postings",
    "ledger_rounds",
    "metadata",
    "post_corrections_on",
    "post_round_on",
    "schema_version",
]

#: The ledger's tables as this code writes them; stored in ``schema_version``.
LEDGER_SCHEMA_VERSION = 1

#: What :meth:`Ledger.rounds` returns: ``lines`` counts the round's own lines, ``batches``
#: its batches of corrections.
ROUNDS_SCHEMA: dict[str, pl.DataType] = {
    "round_id": pl.String(),
    "posted_at_utc": pl.String(),
    "source": pl.String(),
    "lines": pl.Int64(),
    "batches": pl.Int64(),
}

_COMPONENT = "ledger"
_WHAT = "ledger database"
# Lines per INSERT: bounds memory for large rounds and keeps PostgreSQL under its limit on
# bound parameters per statement.
_CHUNK_ROWS = 1000

metadata = sa.MetaData()

schema_version = schema_version_table(metadata)

ledger_rounds = sa.Table(
    "ledger_rounds",
    metadata,
    sa.Column("round_id", sa.String(), primary_key=True),
    sa.Column("posted_at_utc", sa.String(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("lines", sa.Integer(), nullable=False),
)

ledger_batches = sa.Table(
    "ledger_batches",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("ledger_rounds.round_id"),
              primary_key=True),
    sa.Column("batch_id", sa.String(), primary_key=True),
    sa.Column("posted_at_utc", sa.String(), nullable=False),
    sa.Column("lines", sa.Integer(), nullable=False),
)

ledger_postings = sa.Table(
    "ledger_postings",
    metadata,
    sa.Column("posting_id", sa.String(), primary_key=True),
    sa.Column("round_id", sa.String(), sa.ForeignKey("ledger_rounds.round_id"),
              nullable=False, index=True),
    sa.Column("batch_id", sa.String(), nullable=True),
    sa.Column("bid_id", sa.String(), nullable=True),
    sa.Column("account", sa.String(), nullable=False, index=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("amount_cents", sa.BigInteger(), nullable=False),
    sa.Column("posted_at_utc", sa.String(), nullable=False),
    # A null batch_id (the round's own lines) satisfies this on SQLite and PostgreSQL alike.
    sa.ForeignKeyConstraint(["round_id", "batch_id"],
                            ["ledger_batches.round_id", "ledger_batches.batch_id"]),
)

#: Steps from schema version n to n + 1, run in the transaction of :meth:`Ledger.open`
#: after ``create_all`` (which adds new tables; a step alters existing ones).
_UPGRADES: dict[int, Callable[[sa.Connection], None]] = {}


def _insert_round(conn: sa.Connection, round_id: str, postings: pl.DataFrame,
                  source: str) -> None:
    # The round's row goes first: its primary key is what refuses a repeat, in the
    # transaction, however many processes try at once.
    conn.execute(ledger_rounds.insert().values(
        round_id=round_id, posted_at_utc=postings["posted_at_utc"][0],
        source=source, lines=postings.height,
    ))
    Ledger._insert_lines(conn, postings, None)


def post_round_on(conn: sa.Connection, round_id: str, postings: pl.DataFrame, *,
                  source: str = "") -> int:
    """Post round ``round_id``'s lines on ``conn``, inside the caller's write transaction
    (so they commit or roll back with whatever else it writes); return how many.

    The same rules as :meth:`Ledger.post_round`: raises :class:`LedgerError` when the
    postings are invalid (nothing is written then); a round already posted makes the insert
    fail with :class:`sqlalchemy.exc.IntegrityError`, which the caller's rollback undoes.
    The ledger's tables must exist in ``conn``'s database (:meth:`Ledger.open` creates them).
    """
    validate_postings(postings, round_id)
    _insert_round(conn, round_id, postings, source)
    return postings.height


def post_corrections_on(conn: sa.Connection, round_id: str, batch_id: str,
                        postings: pl.DataFrame) -> int:
    """Post one batch of corrections to round ``round_id`` on ``conn``, inside the caller's
    write transaction (they commit or roll back with whatever else it writes); return how
    many lines.

    The same rules as :meth:`Ledger.post_corrections`: raises :class:`LedgerError` when the
    batch id or the postings are invalid or the round is not in the ledger (nothing is
    written by this call then); a batch already posted, or a ``posting_id`` already in the
    ledger, makes the insert fail with :class:`sqlalchemy.exc.IntegrityError`, which the
    caller's rollback undoes.
    """
    if not batch_id or batch_id != batch_id.strip():
        raise LedgerError(f"ledger refuses the corrections: batch id {batch_id!r} is empty or "
                          "has surrounding spaces — fix: name the batch, e.g. "
                          "'meter-2023-07-10'")
    validate_postings(postings, round_id,
                      file=f"corrections batch {batch_id} of round {round_id}")
    known = conn.execute(sa.select(ledger_rounds.c.round_id)
                         .where(ledger_rounds.c.round_id == round_id)).first()
    if known is None:
        raise LedgerError(f"round {round_id} is not in the ledger; corrections go to a posted "
                          "round — fix: post the round first or check the round id")
    conn.execute(ledger_batches.insert().values(
        round_id=round_id, batch_id=batch_id, posted_at_utc=postings["posted_at_utc"][0],
        lines=postings.height))
    Ledger._insert_lines(conn, postings, batch_id)
    return postings.height


class Ledger(Database):
    """The settlement ledger in one database; open it with :meth:`Ledger.open`.

    Append-only: rounds and corrections are posted, read back and summed, never changed.
    Usable as a context manager (closes on exit). Safe to share between threads; several
    :class:`Ledger` objects or processes may use the same database at once.
    """


    # ------------------------------------------------------------------ opening, closing

    @classmethod
    def open(cls, url: str = DEFAULT_URL) -> Ledger:
        """Connect to ``url``, creating the ledger's tables or upgrading them as needed.

        Raises :class:`LedgerError` (with the URL, password hidden, and the fix) when the
        URL is malformed, its driver is not installed, the database cannot be opened (a
        folder that does not exist, a file that is not a database), or the database was
        written by a newer GridBridge.
        """
        engine, shown = open_engine(url, what=_WHAT, error=LedgerError)
        with disposed_on_failure(engine, shown, _WHAT, LedgerError):
            create_or_upgrade(engine, metadata, component=_COMPONENT,
                              version=LEDGER_SCHEMA_VERSION, upgrades=_UPGRADES,
                              label=f"the ledger at {shown}", error=LedgerError)
        return cls(engine, shown)

    # ------------------------------------------------------------------------- posting

    def _write(self) -> AbstractContextManager[sa.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        return write_transaction(self._engine)

    def post_round(self, round_id: str, postings: pl.DataFrame, *, source: str = "") -> int:
        """Post round ``round_id``'s lines; return how many were posted.

        ``postings`` follows :data:`~gridbridge.ledger.schema.POSTING_SCHEMA`, every line
        with ``round_id``, one ``posted_at_utc`` (the round's time) and amounts summing to 0
        cents. ``source`` says where they came from (e.g. the clearing's folder). The
        round's row and all its lines are written in one transaction.

        Raises :class:`LedgerError`, writing nothing, when the postings are invalid, when
        the round is already posted (a posted round is never posted again; corrections go
        through :meth:`post_corrections`), when a ``posting_id`` is already in the ledger,
        or when the database fails.
        """
        validate_postings(postings, round_id)
        try:
            with self._write() as conn:
                _insert_round(conn, round_id, postings, source)
        except sa.exc.IntegrityError as exc:
            raise self._conflict(round_id, None, postings, exc) from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._not_written(f"round {round_id}", exc) from None
        return postings.height

    def post_corrections(self, round_id: str, batch_id: str, postings: pl.DataFrame) -> int:
        """Post one batch of corrections (metered true-ups) to round ``round_id``.

        Any kind is allowed (normally ``correction``); the batch follows the same rules as
        a round (its own ``posted_at_utc``, amounts summing to 0 cents). ``batch_id`` is
        unique within the round; the batch's row and lines go in one transaction. Returns
        the number of lines.

        Raises :class:`LedgerError`, writing nothing, when the round is not in the ledger,
        the batch is already posted, the postings are invalid, a ``posting_id`` is already
        in the ledger, or the database fails.
        """
        if not batch_id or batch_id != batch_id.strip():
            raise LedgerError(f"ledger refuses the corrections: batch id {batch_id!r} is empty "
                              "or has surrounding spaces — fix: name the batch, e.g. "
                              "'meter-2023-07-10'")
        validate_postings(postings, round_id,
                          file=f"corrections batch {batch_id} of round {round_id}")
        try:
            with self._write() as conn:
                known = conn.execute(sa.select(ledger_rounds.c.round_id)
                                     .where(ledger_rounds.c.round_id == round_id)).first()
                if known is None:
                    raise self._unknown_round(round_id)
                conn.execute(ledger_batches.insert().values(
                    round_id=round_id, batch_id=batch_id,
                    posted_at_utc=postings["posted_at_utc"][0], lines=postings.height,
                ))
                self._insert_lines(conn, postings, batch_id)
        except sa.exc.IntegrityError as exc:
            raise self._conflict(round_id, batch_id, postings, exc) from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._not_written(f"corrections batch {batch_id} of round {round_id}",
                                    exc) from None
        return postings.height

    @staticmethod
    def _insert_lines(conn: sa.Connection, postings: pl.DataFrame, batch_id: str | None) -> None:
        for chunk in postings.iter_slices(_CHUNK_ROWS):
            rows = chunk.to_dicts()
            for row in rows:
                row["batch_id"] = batch_id
            conn.execute(ledger_postings.insert(), rows)

    # ---------------------------------------------------------- explaining a refusal

    def _unknown_round(self, round_id: str) -> LedgerError:
        return LedgerError(
            f"round {round_id} is not in the ledger at {self._url}; corrections go to a posted "
            "round — fix: post the round first (gridbridge ledger post OUT_DIR) or check the "
            "round id"
        )

    def _conflict(self, round_id: str, batch_id: str | None, postings: pl.DataFrame,
                  exc: sa.exc.IntegrityError) -> LedgerError:
        """Say which constraint refused a posting, reading the ledger after the rollback."""
        with self._engine.connect() as conn:
            posted = conn.execute(sa.select(ledger_rounds)
                                  .where(ledger_rounds.c.round_id == round_id)).first()
            if batch_id is None and posted is not None:
                source = f" from {posted.source}" if posted.source else ""
                return LedgerError(
                    f"round {round_id} is already posted ({posted.lines} lines on "
                    f"{posted.posted_at_utc}{source}); a posted round is never posted again — "
                    f"post corrections with Ledger.post_corrections('{round_id}', batch_id, "
                    "postings) instead"
                )
            if batch_id is not None:
                if posted is None:
                    return self._unknown_round(round_id)
                batch = conn.execute(sa.select(ledger_batches).where(
                    ledger_batches.c.round_id == round_id, ledger_batches.c.batch_id == batch_id
                )).first()
                if batch is not None:
                    return LedgerError(
                        f"corrections batch {batch_id} of round {round_id} is already posted "
                        f"({batch.lines} lines on {batch.posted_at_utc}); a posted batch is "
                        "never posted again — post further corrections under a new batch_id"
                    )
            ids = postings["posting_id"].to_list()
            taken: list[tuple[str, str]] = []
            for start in range(0, len(ids), _CHUNK_ROWS):
                taken += [tuple(r) for r in conn.execute(
                    sa.select(ledger_postings.c.posting_id, ledger_postings.c.round_id)
                    .where(ledger_postings.c.posting_id.in_(ids[start:start + _CHUNK_ROWS]))
                )]
        what = f"round {round_id}" if batch_id is None else f"batch {batch_id} of {round_id}"
        if taken:
            taken.sort()
            shown = ", ".join(f"'{pid}' (round {rid})" for pid, rid in taken[:5])
            more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
            return LedgerError(
                f"{what} was not posted: posting_id {shown}{more} already in the ledger — fix: "
                "posting ids are unique across the whole ledger; number them within their "
                "round and batch, e.g. '<round_id>:000001' or '<round_id>:<batch_id>:0001'"
            )
        return LedgerError(f"{what} was not posted: the database refused it ({reason(exc)}); "
                           "nothing was written — fix: report this, it is a bug in GridBridge")

    def _not_written(self, what: str, exc: sa.exc.SQLAlchemyError) -> LedgerError:
        return LedgerError(
            f"{what} was not posted to {self._url}: {reason(exc)}; the transaction was rolled "
            "back — fix: make sure the database is reachable and writable, then post again "
            "(a posting already in the ledger is refused, never doubled)"
        )

    # ------------------------------------------------------------------------- reading

    def _read(self, statement: sa.Select[Any]) -> list[sa.Row[Any]]:
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(statement))
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(f"cannot read the ledger at {self._url}: {reason(exc)} — fix: "
                              "make sure the database is reachable") from None

    def postings(self, round_id: str | None = None) -> pl.DataFrame:
        """Every line (of round ``round_id``, with its corrections), sorted by posting_id.

        The frame has :data:`~gridbridge.ledger.schema.POSTING_SCHEMA`; posting a round and
        reading it back gives the same frame, sorted by ``posting_id``.
        """
        statement = sa.select(*(ledger_postings.c[name] for name in POSTING_SCHEMA))
        if round_id is not None:
            statement = statement.where(ledger_postings.c.round_id == round_id)
        rows = self._read(statement)
        if not rows:
            return empty_postings()
        # Sorted here, not by ORDER BY: PostgreSQL collates text by locale, polars by code
        # point, and the order must not depend on the database.
        frame = pl.DataFrame([tuple(r) for r in rows], schema=POSTING_SCHEMA, orient="row")
        return frame.sort("posting_id")

    def rounds(self) -> pl.DataFrame:
        """One row per posted round (:data:`ROUNDS_SCHEMA`), by posted_at_utc then round_id."""
        batches = (sa.select(ledger_batches.c.round_id, sa.func.count().label("batches"))
                   .group_by(ledger_batches.c.round_id).subquery())
        statement = sa.select(
            ledger_rounds.c.round_id, ledger_rounds.c.posted_at_utc, ledger_rounds.c.source,
            ledger_rounds.c.lines, sa.func.coalesce(batches.c.batches, 0),
        ).select_from(ledger_rounds.outerjoin(
            batches, batches.c.round_id == ledger_rounds.c.round_id))
        rows = [tuple(r) for r in self._read(statement)]
        frame = pl.DataFrame(rows, schema=ROUNDS_SCHEMA, orient="row")
        return frame.sort("posted_at_utc", "round_id")

    def balances(self, round_id: str | None = None) -> pl.DataFrame:
        """Each account's net amount (of round ``round_id`` with its corrections, or of all).

        Columns ``account`` (String) and ``amount_cents`` (Int64: positive, the account has
        received more than it paid), sorted by account; the amounts sum to 0. An account
        whose lines cancel out is listed with 0.
        """
        # PostgreSQL sums BIGINT to NUMERIC; the cast brings it back to an integer.
        total = sa.cast(sa.func.sum(ledger_postings.c.amount_cents), sa.BigInteger)
        statement = (sa.select(ledger_postings.c.account, total)
                     .group_by(ledger_postings.c.account))
        if round_id is not None:
            statement = statement.where(ledger_postings.c.round_id == round_id)
        rows = [tuple(r) for r in self._read(statement)]
        frame = pl.DataFrame(rows, schema={"account": pl.String(), "amount_cents": pl.Int64()},
                             orient="row")
        return frame.sort("account")

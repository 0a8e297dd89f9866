"""The exchange's database handle: opening, schema, transactions, error wrapping.

:class:`ExchangeStore` wraps one SQLAlchemy engine on the database the exchange shares with
the ledger (``sqlite:///gridbridge.db`` by default; PostgreSQL by URL), opened by
:func:`gridbridge.db.open_engine`: on SQLite, WAL with ``synchronous=FULL`` (a committed
write is on disk: what the exchange acknowledges survives a crash or a power cut), foreign
keys on, writers beginning ``BEGIN IMMEDIATE``.

* :meth:`ExchangeStore.open` with ``create=True`` (``gridbridge exchange init``) creates the
  tables of :mod:`gridbridge.exchange.schema` or upgrades them; without it (``serve``) the
  database must already hold the exchange at this code's schema version.
* :meth:`ExchangeStore.write` is one transaction (committed when the block ends, rolled back
  if it raises); :meth:`ExchangeStore.read` a consistent read. Database failures in either
  become :class:`~gridbridge.errors.ExchangeError` (the app answers 503), except
  :class:`sqlalchemy.exc.IntegrityError`, which the callers turn into the refusal it means.

The domain modules (:mod:`~gridbridge.exchange.registry`, :mod:`~gridbridge.exchange.tokens`,
:mod:`~gridbridge.exchange.audit`, :mod:`~gridbridge.exchange.telemetry`,
:mod:`~gridbridge.exchange.rounds`) do their reads and writes through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from gridbridge.db import (
    DEFAULT_URL,
    Database,
    create_or_upgrade,
    disposed_on_failure,
    open_engine,
    reason,
    sqlite_file,
    stored_version,
    write_transaction,
)
from gridbridge.errors import ExchangeError
from gridbridge.exchange.schema import EXCHANGE_SCHEMA_VERSION, UPGRADES, metadata, schema_version
from gridbridge.ledger.store import Ledger

__all__ = ["COMPONENT", "DEFAULT_URL", "ExchangeStore", "init_fix"]

COMPONENT = "exchange"
_WHAT = "exchange database"


def init_fix(url: str) -> str:
    """The command that initialises (or upgrades) the exchange in ``url``."""
    return f"gridbridge exchange init --db {url} --from datasets/bridge-2023"


class ExchangeStore(Database):
    """The exchange's database; open with :meth:`open`, close with :meth:`close`.

    Safe to share between threads (the engine pools connections); several processes may use
    the same database at once. Usable as a context manager (closes on exit).
    """


    @classmethod
    def open(cls, url: str = DEFAULT_URL, *, create: bool = False) -> ExchangeStore:
        """Connect to ``url``; with ``create``, create or upgrade the exchange's tables.

        Raises :class:`ExchangeError` (URL shown with its password hidden, and the fix)
        when the URL is malformed or its driver missing, the database cannot be opened, it
        was written by a newer GridBridge, or (without ``create``) the exchange has not been
        initialised in it or needs an upgrade.
        """
        engine, shown = open_engine(url, what=_WHAT, error=ExchangeError)
        with disposed_on_failure(engine, shown, _WHAT, ExchangeError):
            if create:
                create_or_upgrade(engine, metadata, component=COMPONENT,
                                  version=EXCHANGE_SCHEMA_VERSION, upgrades=UPGRADES,
                                  label=f"the exchange at {shown}", error=ExchangeError)
                # A cleared round's ledger lines are posted in the clearing's transaction,
                # so the ledger's tables live beside the exchange's from the start.
                Ledger.open(url).close()
            else:
                cls._require_schema(engine, shown)
        return cls(engine, shown)

    @staticmethod
    def _require_schema(engine: sa.Engine, shown: str) -> None:
        path = sqlite_file(engine)
        # Connecting would create an empty file; say what is missing instead.
        if path is not None and not path.is_file():
            raise ExchangeError(
                f"the exchange database {shown} does not exist — fix: create it with "
                f"{init_fix(shown)}"
            )
        found = stored_version(engine, COMPONENT)
        if found is None:
            raise ExchangeError(
                f"the exchange has not been initialised in {shown} — fix: run {init_fix(shown)}"
            )
        if found > EXCHANGE_SCHEMA_VERSION:
            raise ExchangeError(
                f"the exchange at {shown} has schema version {found}, newer than this "
                f"GridBridge's {EXCHANGE_SCHEMA_VERSION} — fix: upgrade GridBridge to serve it"
            )
        if found < EXCHANGE_SCHEMA_VERSION:
            raise ExchangeError(
                f"the exchange at {shown} has schema version {found}, older than this "
                f"GridBridge's {EXCHANGE_SCHEMA_VERSION} — fix: upgrade it with "
                f"{init_fix(shown)} (keeps its data)"
            )

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction; an IntegrityError propagates (after the rollback) for the
        caller to explain; any other database failure becomes :class:`ExchangeError`."""
        try:
            with write_transaction(self._engine) as conn:
                yield conn
        except sa.exc.IntegrityError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed("write to", exc) from None

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """One read transaction (a consistent view); failures become :class:`ExchangeError`."""
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed("read", exc) from None

    def _failed(self, verb: str, exc: sa.exc.SQLAlchemyError) -> ExchangeError:
        return ExchangeError(
            f"cannot {verb} the exchange database {self._url}: {reason(exc)}; nothing was "
            "written — fix: make sure the database is reachable and writable and its disk has "
            "room, then retry"
        )

    def ping(self) -> None:
        """A trivial query on the exchange's own schema row; raises :class:`ExchangeError`
        when the database is unusable."""
        with self.read() as conn:
            found = conn.execute(sa.select(schema_version.c.version)
                                 .where(schema_version.c.component == COMPONENT)).first()
        if found is None:
            raise ExchangeError(f"the exchange has not been initialised in {self._url} — fix: "
                                f"run {init_fix(self._url)}")

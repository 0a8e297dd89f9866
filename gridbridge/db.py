"""The one way GridBridge opens its database: engines, durable SQLite, schema versions.

The ledger (:mod:`gridbridge.ledger.store`) and the exchange
(:mod:`gridbridge.exchange.storage`) share one database, named by a SQLAlchemy URL: a SQLite
file by default (``sqlite:///gridbridge.db``, relative to the current directory;
``sqlite:////abs/path.db`` for an absolute path) or PostgreSQL
(``postgresql+psycopg://user@host/dbname``). Only portable Core constructs are used.

What every engine opened here guarantees on SQLite:

* WAL mode with ``synchronous=FULL``: a transaction that has committed is on disk and
  survives a power cut; readers run beside the writer;
* foreign keys enforced (SQLite leaves them off unless each connection asks);
* transactions begun by SQLAlchemy, not by the ``sqlite3`` module (whose own rule skips
  BEGIN before SELECT and DDL and so breaks atomicity); write transactions
  (:func:`write_transaction`) start with ``BEGIN IMMEDIATE``, so writers queue (up to 30 s)
  instead of failing mid-transaction.

Each component keeps its schema version in the shared ``schema_version`` table (one row per
component) and creates or upgrades its tables with :func:`create_or_upgrade`.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa

try:
    import fcntl
except ImportError:  # Windows: each process's own lock only
    fcntl = None  # type: ignore[assignment]

from gridbridge.errors import GridBridgeError

__all__ = [
    "DEFAULT_URL",
    "URL_FIX",
    "Database",
    "ErrorFactory",
    "create_or_upgrade",
    "open_engine",
    "reason",
    "schema_version_table",
    "sqlite_file",
    "stored_version",
    "unopenable",
    "write_transaction",
]

DEFAULT_URL = "sqlite:///gridbridge.db"

URL_FIX = (
    "give a URL like sqlite:///gridbridge.db (relative to the current directory), "
    "sqlite:////absolute/path/gridbridge.db, or postgresql+psycopg://user@host/dbname"
)

#: Builds the component's own error (LedgerError, ExchangeError) from a message.
ErrorFactory = Callable[[str], GridBridgeError]

# How long a SQLite writer waits for another one to commit before giving up.
_SQLITE_BUSY_TIMEOUT_S = 30.0
#: Pooled connections kept open, and how many more may open at a burst (the exchange's
#: request threads, gridbridge.exchange.app.REQUEST_THREADS, plus its worker threads:
#: clearing, lease heartbeat, audit writer).
POOL_SIZE, POOL_OVERFLOW = 10, 10
_WRITERS: weakref.WeakKeyDictionary[sa.Engine, _SqliteWriters] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()
# Execution option marking a connection that will write (SQLite begins it IMMEDIATE).
_WRITE = "gridbridge_write"


def reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The database's own words, without SQLAlchemy's statement dump and help link."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return str(exc.orig).strip().splitlines()[0]
    return str(exc).strip().splitlines()[0]


def schema_version_table(metadata: sa.MetaData) -> sa.Table:
    """The shared ``schema_version`` table (``component`` -> ``version``) in ``metadata``.

    Every component's metadata holds its own copy of this one definition, so each can
    ``create_all`` on its own; whichever comes first creates the table.
    """
    # Unbounded VARCHARs: SQLite ignores lengths and PostgreSQL would enforce them, so a
    # length would make the two databases disagree about what they accept.
    return sa.Table(
        "schema_version",
        metadata,
        sa.Column("component", sa.String(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, begins transactions (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL lets readers run beside the writer; FULL syncs the WAL at every commit, so
            # a write acknowledged is a write on disk. SQLite leaves foreign keys off unless
            # each connection asks.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A writer takes the write lock at BEGIN: waiting there is safe, whereas a deferred
        # transaction that read first can fail on its first write when another commits.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_engine(url: str, *, what: str, error: ErrorFactory) -> tuple[sa.Engine, str]:
    """An engine for ``url`` and the URL as shown in messages (password hidden).

    ``what`` names the database in messages ("ledger database"); ``error`` builds the
    component's exception. Raises it when the URL is malformed or its dialect or driver is
    not installed. Nothing is connected yet: :func:`create_or_upgrade` is the first use.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise error(f"'{url}' is not a database URL — fix: {URL_FIX}") from None
    shown = parsed.render_as_string(hide_password=True)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() != "sqlite" or parsed.database not in (None, "", ":memory:"):
        # As many connections as the threads that use them at once (the server's request
        # threads, its workers), kept open: a connection closed after each burst and opened
        # again costs a handshake (or SQLite's pragmas) on every request under load.
        options["pool_size"], options["max_overflow"] = POOL_SIZE, POOL_OVERFLOW
    if parsed.get_backend_name() == "sqlite":
        if "timeout" not in parsed.query:
            options["connect_args"] = {"timeout": _SQLITE_BUSY_TIMEOUT_S}
    else:
        # A server restart or a failover drops every pooled connection: test each one as it
        # is taken, so the first request afterwards gets a fresh one instead of an error.
        options["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **options)
    except (sa.exc.ArgumentError, ImportError) as exc:
        # NoSuchModuleError (an unknown dialect) is an ArgumentError; a missing driver
        # (psycopg, psycopg2) is an ImportError.
        raise error(
            f"cannot open the {what} {shown}: {exc} — fix: {URL_FIX}; for PostgreSQL install "
            "its driver (pip install 'psycopg[binary]')"
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine, shown


class _SqliteWriters:
    """Turns for the writers of one SQLite file: a thread lock for this process's writers,
    then an exclusive ``flock`` on ``<file>-gridbridge-writers`` for the processes sharing
    the file (released by the kernel when a process dies, so it is never stale)."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is not None and fcntl is not None:
            # In a read-only folder there is no file: the thread lock still orders this
            # process's writers.
            with suppress(OSError):
                self._fd = os.open(f"{path}-gridbridge-writers", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._lock:
            if self._fd is None or fcntl is None:
                yield
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sqlite_writers(engine: sa.Engine) -> _SqliteWriters | None:
    """The writers' turns of a SQLite engine (made on first use); None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITERS_GUARD:
        writers = _WRITERS.get(engine)
        if writers is None:
            writers = _WRITERS[engine] = _SqliteWriters(sqlite_file(engine))
            weakref.finalize(engine, writers.close)
        return writers


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: committed when the block ends, rolled back if it raises.

    On SQLite, writers take turns here, before BEGIN IMMEDIATE (:class:`_SqliteWriters`):
    SQLite has one write lock per file, and a connection that finds it taken sleeps in its
    busy handler (1, 2, 5 ... 100 ms steps) instead of being woken when it is free, which
    under many concurrent writers, threads or processes, costs far more than the writes.
    """
    writers = _sqlite_writers(engine)
    with writers.turn() if writers is not None else nullcontext(), \
            engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def disposed_on_failure(engine: sa.Engine, shown: str, what: str,
                        error: ErrorFactory) -> Iterator[None]:
    """Around a store's first use of ``engine``: on any failure the engine is disposed (no
    pooled connection outlives a store that never opened), and a database error becomes
    :func:`unopenable`'s message."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise unopenable(engine, shown, what, exc, error) from None
    except BaseException:
        engine.dispose()
        raise


def sqlite_file(engine: sa.Engine) -> Path | None:
    """The file of a SQLite engine, also when named by a URI (``sqlite:///file:PATH?mode=ro&
    uri=true``, how a database is opened read-only); None for another database or memory."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if engine.url.query.get("uri") == "true" and database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def unopenable(engine: sa.Engine, shown: str, what: str, exc: sa.exc.SQLAlchemyError,
               error: ErrorFactory) -> GridBridgeError:
    """The error for a database that failed on first use, naming a missing SQLite folder."""
    path = sqlite_file(engine)
    folder = path.parent if path is not None else None
    if folder is not None and not folder.is_dir():
        return error(
            f"cannot open the {what} {shown}: the folder {folder} does not exist — fix: create "
            f"it (mkdir -p {folder}) or give another path; {URL_FIX}"
        )
    return error(
        f"cannot open the {what} {shown}: {reason(exc)} — fix: check the URL, that the folder "
        f"of a SQLite file exists and is writable, and that the file is a GridBridge "
        f"database; {URL_FIX}"
    )


def create_or_upgrade(
    engine: sa.Engine,
    metadata: sa.MetaData,
    *,
    component: str,
    version: int,
    upgrades: dict[int, Callable[[sa.Connection], None]],
    label: str,
    error: ErrorFactory,
) -> None:
    """Create ``metadata``'s missing tables and bring ``component``'s schema to ``version``.

    One write transaction: ``create_all`` (adds new tables), then the ``schema_version`` row
    is inserted, or each step ``upgrades[n]`` (n -> n + 1, altering existing tables) runs.
    ``label`` names the database in messages ("the ledger at sqlite:///x.db"). Raises
    ``error(...)`` when the stored version is newer than ``version`` or has no upgrade step;
    database failures propagate as :class:`sqlalchemy.exc.SQLAlchemyError`.
    """
    table = metadata.tables["schema_version"]
    for attempt in range(3):
        try:
            with write_transaction(engine) as conn:
                metadata.create_all(conn)
                _settle_version(conn, table, component, version, upgrades, label, error)
            return
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # Two processes setting up a fresh PostgreSQL database race on CREATE TABLE or on
            # the version row; the loser finds the winner's tables on its retry. (On SQLite
            # BEGIN IMMEDIATE serialises them.)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _settle_version(conn: sa.Connection, table: sa.Table, component: str, version: int,
                    upgrades: dict[int, Callable[[sa.Connection], None]], label: str,
                    error: ErrorFactory) -> None:
    found = conn.execute(
        sa.select(table.c.version).where(table.c.component == component)
    ).scalar_one_or_none()
    if found is None:
        conn.execute(table.insert().values(component=component, version=version))
        return
    if found > version:
        raise error(
            f"{label} has schema version {found}, newer than this GridBridge's {version} — "
            "fix: upgrade GridBridge to read it"
        )
    for step_from in range(found, version):
        step = upgrades.get(step_from)
        if step is None:
            raise error(
                f"{label} has schema version {step_from}, which this GridBridge cannot "
                "upgrade — fix: upgrade with the GridBridge release that followed it, then "
                "with this one"
            )
        step(conn)
    if found != version:
        conn.execute(table.update().where(table.c.component == component)
                     .values(version=version))


def stored_version(engine: sa.Engine, component: str) -> int | None:
    """``component``'s schema version in the database, or None when it has none yet."""
    inspector = sa.inspect(engine)
    if not inspector.has_table("schema_version"):
        return None
    table = schema_version_table(sa.MetaData())
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table.c.version).where(table.c.component == component)
        ).scalar_one_or_none()


class Database:
    """What every store on the shared database has: its engine, its URL (password hidden),
    closing, and use as a context manager. Subclasses add ``open`` and their own methods."""

    def __init__(self, engine: sa.Engine, url: str) -> None:
        """Wrap an engine whose schema is ready; use the subclass's ``open`` instead."""
        self._engine = engine
        self._url = url

    def close(self) -> None:
        """Close every pooled connection; the object is unusable afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for components sharing the database, and for tests)."""
        return self._engine

"""The two database backends every exchange and ledger test runs on: a SQLite file and a
PostgreSQL database, each fresh per use.

PostgreSQL is found at ``GRIDBRIDGE_TEST_PG_URL`` (an administrative URL such as
``postgresql+psycopg://gridbridge:gridbridge@127.0.0.1:5432/postgres``; ``.ci/run`` starts
Debian's PostgreSQL and sets it), else at :data:`DEFAULT_PG_URL` if a server answers there.
Each :meth:`Databases.fresh` creates its own database (``CREATE DATABASE gbt_...``) and the
session drops them all at its end. Without a server the PostgreSQL half skips with a visible
reason, and fails under ``GRIDBRIDGE_REQUIRE_ALL=1``
(:func:`tests.conftest.require_part`).
"""

from __future__ import annotations

import os
import secrets
import warnings
from functools import cache
from pathlib import Path

import sqlalchemy as sa

__all__ = ["BACKENDS", "DEFAULT_PG_URL", "PG_ENV", "PG_HOW", "Databases", "pg_admin_url"]

BACKENDS = ("sqlite", "postgresql")
PG_ENV = "GRIDBRIDGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://gridbridge:gridbridge@127.0.0.1:5432/postgres"
#: How to get a server when none answers (the skip message says it).
PG_HOW = (f"set {PG_ENV} to an administrative postgresql+psycopg:// URL (a role that may "
          "CREATE DATABASE), or start PostgreSQL as .ci/run does")


@cache
def pg_admin_url() -> str | None:
    """The administrative PostgreSQL URL if a server answers there, else None."""
    url = os.environ.get(PG_ENV) or DEFAULT_PG_URL
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    except Exception:  # no driver, or a malformed URL
        return None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        return None
    finally:
        engine.dispose()
    return url


class Databases:
    """Fresh databases of one backend for a test session."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend, self.folder = backend, folder
        self._created: list[str] = []

    def fresh(self, name: str = "gridbridge") -> str:
        """The SQLAlchemy URL of a new, empty database (``name`` labels it)."""
        if self.backend == "sqlite":
            path = self.folder / f"{name}-{secrets.token_hex(4)}.db"
            return f"sqlite:///{path}"
        admin = pg_admin_url()
        assert admin is not None, "the caller checked the server answers"
        database = f"gbt_{name.replace('-', '_')[:30]}_{secrets.token_hex(4)}".lower()
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
        finally:
            engine.dispose()
        self._created.append(database)
        return sa.make_url(admin).set(database=database).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database this made (PostgreSQL; SQLite files go with the folder)."""
        admin = pg_admin_url()
        if not self._created or admin is None:
            return
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for database in self._created:
                    try:
                        conn.execute(sa.text(
                            f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                    except sa.exc.DBAPIError as error:
                        # A leftover throwaway database is harmless; failing the session
                        # over one (say a connection the role may not end) is not.
                        warnings.warn(f"could not drop {database}: {error}", stacklevel=1)
        finally:
            engine.dispose()
        self._created.clear()

"""Shared test helpers.

``require_part`` is how a test depends on something PyPI cannot install (a browser, a
PostgreSQL server): on a plain machine the test skips with a visible reason; with
``GRIDBRIDGE_REQUIRE_ALL=1`` (set by ``.ci/run``) it fails instead, so CI never skips it.
``run_cli`` runs the ``gridbridge`` command line in-process. ``databases`` gives fresh
databases of each backend (:mod:`tests.databases`): a test or fixture that uses it runs once
on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import BACKENDS, PG_HOW, Databases, pg_admin_url

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
BRIDGE_2023 = REPO_ROOT / "datasets" / "bridge-2023"
W27 = BRIDGE_2023 / "market-2023-W27"


def require_all() -> bool:
    """True when every optional part must be present (CI)."""
    return os.environ.get("GRIDBRIDGE_REQUIRE_ALL", "") not in ("", "0")


def require_part(available: bool, what: str, how: str) -> None:
    """Skip (plain machine) or fail (GRIDBRIDGE_REQUIRE_ALL=1) when ``what`` is missing."""
    if available:
        return
    message = f"{what} is not available; {how}"
    if require_all():
        pytest.fail(f"GRIDBRIDGE_REQUIRE_ALL=1 but {message}")
    pytest.skip(message)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``gridbridge ARGS`` in-process: its exit status, stdout and stderr."""
    # Imported here: the CLI loads every command's dependencies, which most tests never need.
    from gridbridge.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session", params=BACKENDS)
def databases(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Fresh databases of one backend (the parameter): SQLite, then PostgreSQL."""
    backend = str(request.param)
    if backend == "postgresql":
        require_part(pg_admin_url() is not None, "a PostgreSQL server", PG_HOW)
    made = Databases(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    try:
        yield made
    finally:
        made.drop_all()


@pytest.fixture(scope="session")
def postgres_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Fresh PostgreSQL databases, for the tests only PostgreSQL makes sense for (a server
    that drops connections)."""
    require_part(pg_admin_url() is not None, "a PostgreSQL server", PG_HOW)
    made = Databases("postgresql", tmp_path_factory.mktemp("db-postgresql-only"))
    try:
        yield made
    finally:
        made.drop_all()

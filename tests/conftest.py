"""Shared test helpers.

``require_part`` is how a test depends on something PyPI cannot install (a browser, a
PostgreSQL server): on a plain machine the test skips with a visible reason; with
``GRIDBRIDGE_REQUIRE_ALL=1`` (set by ``.ci/run``) it fails instead, so CI never skips it.
``run_cli`` runs the ``gridbridge`` command line in-process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

"""One small cleared round shared by the report tests (cleared once: it is the slow part).

Layout under a temporary root: ``bundle/`` (40 bids, 4 sites, 48 hours of 2023-W27) and
``clear/`` (``gridbridge clear bundle --out clear``), so summary.json names the bundle as
``../bundle``. Tests never write into ``clear/``: those that need to copy it with
:func:`copy_clearing`, a sibling at the same depth, where ``../bundle`` still resolves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from gridbridge.bundle import write_bundle
from gridbridge.cli import main
from gridbridge.ledger import read_postings_csv
from gridbridge.market import MakerOptions, make_market
from tests.conftest import BRIDGE_2023


@pytest.fixture(scope="package")
def cleared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clearing folder of a small priced round (with ledger.csv)."""
    root = tmp_path_factory.mktemp("reports")
    market = make_market(BRIDGE_2023, MakerOptions(week="2023-W27", bids=40, sites=4,
                                                   hours=48, seed=3))
    write_bundle(market, root / "bundle")
    main(["clear", str(root / "bundle"), "--out", str(root / "clear"), "--time-limit", "5"])
    assert (root / "clear" / "ledger.csv").is_file()
    return root / "clear"


def copy_clearing(cleared: Path, name: str) -> Path:
    """A copy of the clearing folder beside it (so its relative bundle path still works)."""
    target = cleared.parent / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(cleared, target, ignore=shutil.ignore_patterns("reports"))
    return target


def ledger_of(cleared: Path) -> pl.DataFrame:
    """ledger.csv with the ledger's types."""
    return read_postings_csv(cleared / "ledger.csv")

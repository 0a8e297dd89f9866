"""``make bench``: how much validation and market making cost, as ratios to a plain read.

The machines are shared and noisy, so every figure is a ratio against a baseline measured in
the same run: the baseline is polars reading the W27 bundle's six tables with no checks. Each
case runs ``REPEATS`` times and reports its median. Not a test (no timing assertions).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gridbridge.bundle import read_bundle, write_bundle  # noqa: E402
from gridbridge.market import MakerOptions, make_market  # noqa: E402
from optim.market import TABLES  # noqa: E402

W27 = ROOT / "datasets" / "bridge-2023" / "market-2023-W27"
REPEATS = 7


def median_seconds(work: Callable[[], object]) -> float:
    """Median wall time of REPEATS runs after one warm-up, in seconds."""
    work()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / "w27-parquet"
        write_bundle(read_bundle(W27), parquet, fmt="parquet")
        baseline = median_seconds(lambda: [pl.read_csv(W27 / f"{t}.csv") for t in TABLES])
        cases = {
            "read + validate W27 (CSV)": lambda: read_bundle(W27),
            "read + validate W27 (Parquet)": lambda: read_bundle(parquet),
            "make W27 market (500 bids)": lambda: make_market(
                ROOT / "datasets" / "bridge-2023", MakerOptions(bids=500, seed=1)),
        }
        print(f"baseline: plain polars read of W27's six CSV tables = {baseline * 1e3:.1f} ms "
              f"(median of {REPEATS})")
        print(f"{'case':<34}{'ms':>10}{'x baseline':>12}")
        for name, work in cases.items():
            seconds = median_seconds(work)
            print(f"{name:<34}{seconds * 1e3:>10.1f}{seconds / baseline:>12.1f}")


if __name__ == "__main__":
    main()

"""A tiny valid market bundle, written as CSV text, and tools to corrupt one thing at a time.

The bundle: 2 members (KR, CA), 2 GPU types (H100, A100), 2 sites in 2 zones (KR, CA-ON), a
4-hour window 2023-07-03T00:00Z..04:00Z, capacity for every site × type × hour, grid for every
zone × hour, and 3 bids (one released before the window starts, which is allowed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridbridge.bundle import read_bundle
from gridbridge.errors import BundleError, Problem
from optim.market import Market

HOURS = ["2023-07-03T00:00Z", "2023-07-03T01:00Z", "2023-07-03T02:00Z", "2023-07-03T03:00Z"]

MARKET_TOML = """\
window_start_utc = "2023-07-03T00:00Z"
window_end_utc = "2023-07-03T04:00Z"
carbon_price_eur_per_t = 80.0
carbon_signal = "direct"
time_limit_s = 30
mip_rel_gap = 0.01
"""

TABLES: dict[str, list[list[str]]] = {
    "members": [
        ["member", "name", "pledge_share"],
        ["KR", "South Korea", "0.6"],
        ["CA", "Canada", "0.4"],
    ],
    "gpus": [
        ["gpu_type", "it_kw", "board_kw"],
        ["H100", "1.275", "0.7"],
        ["A100", "0.8125", "0.4"],
    ],
    "sites": [
        [
            "site_id",
            "member",
            "zone",
            "jurisdiction",
            "lat",
            "lon",
            "pue",
            "tariff_adder_eur_per_mwh",
            "city",
        ],
        ["KR-SUWON-1", "KR", "KR", "KR", "37.26", "127.03", "1.3", "20.0", "Suwon"],
        ["CA-TORONTO-1", "CA", "CA-ON", "CA", "43.65", "-79.38", "1.2", "15.0", "Toronto"],
    ],
    "capacity": [
        ["site_id", "gpu_type", "hour_utc", "gpus_available", "ask_eur_per_gpu_hour"],
        *[
            [site, gpu, hour, str(8 * (i + 1)), ask]
            for site in ("KR-SUWON-1", "CA-TORONTO-1")
            for gpu, ask in (("H100", "2.5"), ("A100", "1.25"))
            for i, hour in enumerate(HOURS)
        ],
    ],
    "grid": [
        [
            "zone",
            "hour_utc",
            "carbon_direct_g_per_kwh",
            "carbon_lifecycle_g_per_kwh",
            "price_eur_per_mwh",
        ],
        *[
            [zone, hour, str(base + i), str(base + 50 + i), str(price - 10 * i)]
            for zone, base, price in (("KR", 420, 95.5), ("CA-ON", 30, 40.0))
            for i, hour in enumerate(HOURS)
        ],
    ],
    "bids": [
        [
            "bid_id",
            "member",
            "gpu_options",
            "gpus",
            "release_utc",
            "deadline_utc",
            "value_eur",
            "allowed_jurisdictions",
        ],
        ["B1", "KR", "H100:2;A100:3", "8", HOURS[0], "2023-07-03T04:00Z", "500.0", "*"],
        ["B2", "CA", "A100:2", "16", HOURS[1], "2023-07-03T04:00Z", "300.0", "CA"],
        ["B3", "KR", "H100:1", "8", "2023-07-02T20:00Z", HOURS[2], "100.0", "KR;CA"],
    ],
}


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@dataclass
class Bundle:
    """A bundle folder plus small editors; row numbers are 1-based data rows."""

    path: Path

    def file(self, table: str) -> Path:
        return self.path / f"{table}.csv"

    def rows(self, table: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.file(table).read_text())))

    def write_rows(self, table: str, rows: list[list[str]]) -> None:
        self.file(table).write_text(csv_text(rows))

    def set(self, table: str, row: int, column: str, value: str) -> None:
        rows = self.rows(table)
        rows[row][rows[0].index(column)] = value
        self.write_rows(table, rows)

    def get(self, table: str, row: int, column: str) -> str:
        rows = self.rows(table)
        return rows[row][rows[0].index(column)]

    def append(self, table: str, values: list[str]) -> None:
        self.write_rows(table, [*self.rows(table), values])

    def drop_rows(self, table: str, keep: Callable[[dict[str, str]], bool]) -> None:
        rows = self.rows(table)
        body = [r for r in rows[1:] if keep(dict(zip(rows[0], r, strict=True)))]
        self.write_rows(table, [rows[0], *body])

    def drop_column(self, table: str, column: str) -> None:
        rows = self.rows(table)
        i = rows[0].index(column)
        self.write_rows(table, [r[:i] + r[i + 1 :] for r in rows])

    def set_config(self, key: str, value: str | None) -> None:
        """Replace (or with None remove) one ``key = value`` line of market.toml."""
        path = self.path / "market.toml"
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(f"{key} =")]
        if value is not None:
            lines.append(f"{key} = {value}")
        path.write_text("\n".join(lines) + "\n")


def write_valid_bundle(path: Path) -> Bundle:
    path.mkdir(parents=True, exist_ok=True)
    (path / "market.toml").write_text(MARKET_TOML)
    for table, rows in TABLES.items():
        (path / f"{table}.csv").write_text(csv_text(rows))
    return Bundle(path)


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    """A valid CSV bundle in ``tmp_path / 'bundle'``; tests corrupt one thing each."""
    return write_valid_bundle(tmp_path / "bundle")


def problems_of(path: Path) -> list[Problem]:
    """The problems a bundle is rejected with (fails the test if it is accepted)."""
    with pytest.raises(BundleError) as info:
        read_bundle(path)
    assert info.value.problems, "a BundleError must list its problems"
    return info.value.problems


def find(
    problems: list[Problem], file: str, row: int | None, field: str | None, text: str
) -> Problem:
    """The problem at (file, row, field) whose message contains ``text``; it must have a fix."""
    for p in problems:
        if p.file == file and p.row == row and p.field == field and text in p.message:
            assert p.fix, f"problem without a fix: {p}"
            rendered = str(p)
            assert file in rendered and "fix:" in rendered
            if row is not None:
                assert f"row {row}" in rendered
            if field is not None:
                assert f"field '{field}'" in rendered
            return p
    listing = "\n".join(str(p) for p in problems)
    raise AssertionError(f"no problem ({file}, {row}, {field}, '{text}') among:\n{listing}")


def assert_markets_equal(a: Market, b: Market) -> None:
    assert a.config == b.config
    for name in ("members", "gpus", "sites", "capacity", "grid", "bids", "bid_options"):
        left, right = a.table(name), b.table(name)
        assert left.schema == right.schema, name
        assert left.equals(right), f"{name} differs:\n{left}\n{right}"

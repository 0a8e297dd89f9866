"""Read a market bundle folder into a validated :class:`Market` (or a :class:`BundleError`).

File I/O only; every rule lives in :mod:`gridbridge.bundle.validate`. Each table is
``<table>.csv`` or ``<table>.parquet`` (exactly one of them), read entirely as strings:

* CSV with :func:`gridbridge.textcsv.read_csv_text` (the standard :mod:`csv` module: RFC 4180
  quoting, UTF-8, an optional BOM), every cell a string, the equivalent of
  ``polars.read_csv(infer_schema=False)``. We do not use polars' reader here because it
  silently pads short rows with nulls and cannot say which record is ragged; this way a
  ragged row is reported with its row number. Blank rows at the end of a file (empty, or
  only spaces and commas) are ignored; a blank line in the middle is a ragged row.
* Parquet with :func:`gridbridge.tables.read_parquet`, each column then rendered as text by
  :func:`~gridbridge.bundle.columns.frame_as_strings` (tz-naive datetimes without an offset,
  zoned ones with theirs), so the one validator judges both formats alike.

A file that cannot be read at all (missing, both formats present, malformed CSV, unreadable
Parquet, invalid TOML) is one problem; the other files are still read and validated, and the
error lists everything. A bad bundle never half-loads.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl

from gridbridge.bundle.validate import CONFIG_FILE, check_bundle, order_problems
from gridbridge.errors import BundleError, Problem
from gridbridge.tables import read_parquet
from gridbridge.textcsv import read_csv_text, unreadable
from gridbridge.tomltext import parse_toml
from optim.market import SCHEMAS, TABLES, Market

__all__ = ["read_bundle", "read_bundle_with_warnings", "read_config", "read_table"]

FORMATS = ("csv", "parquet")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_csv(path: Path) -> tuple[pl.DataFrame | None, list[Problem]]:
    header_fix = f"the first line must be the header: {','.join(SCHEMAS[path.stem])}"
    return read_csv_text(path, file=path.name, header_fix=header_fix)


def read_table(folder: Path, table: str) -> tuple[pl.DataFrame | None, str, list[Problem]]:
    """Find and read ``table`` in ``folder``: (raw frame or None, file name, problems).

    The frame is ``None`` exactly when there are problems; then the name is the file that
    failed (or ``<table>.csv`` when there is none).
    """
    found = [folder / f"{table}.{ext}" for ext in FORMATS if (folder / f"{table}.{ext}").is_file()]
    if not found:
        return (
            None,
            f"{table}.csv",
            [
                Problem(
                    f"{table}.csv",
                    None,
                    None,
                    f"missing: neither {table}.csv nor {table}.parquet is in the bundle",
                    f"add {table}.csv with the columns {', '.join(SCHEMAS[table])}",
                )
            ],
        )
    if len(found) > 1:
        return (
            None,
            found[0].name,
            [
                Problem(
                    found[0].name,
                    None,
                    None,
                    f"both {table}.csv and {table}.parquet exist, so the table is ambiguous",
                    "remove one of the two files",
                )
            ],
        )
    path = found[0]
    frame, problems = (
        _read_csv(path) if path.suffix == ".csv" else read_parquet(path, path.name)
    )
    return frame, path.name, problems


def read_config(folder: Path) -> tuple[dict[str, object] | None, list[Problem]]:
    """Parse ``market.toml``: (the TOML as a dict, or None, and the problems)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return None, [
            Problem(
                CONFIG_FILE,
                None,
                None,
                "missing",
                "add market.toml with window_start_utc, window_end_utc, "
                "carbon_price_eur_per_t and carbon_signal",
            )
        ]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [unreadable(CONFIG_FILE, exc)]
    try:
        return parse_toml(data.decode("utf-8")), []
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return None, [
            Problem(
                CONFIG_FILE,
                None,
                None,
                f"is not valid TOML: {_first_line(exc)}",
                'write key = value lines, strings in double quotes, e.g. carbon_signal = "direct"',
            )
        ]


def read_bundle_with_warnings(path: str | Path) -> tuple[Market, list[str]]:
    """Read and validate the bundle folder ``path``: the Market and the validator's warnings.

    Raises :class:`BundleError` listing every problem in every file (see
    :mod:`gridbridge.bundle.validate` for the rules).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(
            str(folder),
            [
                Problem(
                    str(folder),
                    None,
                    None,
                    "is not a folder",
                    "pass the bundle folder that holds market.toml and the table files",
                )
            ],
        )
    config, problems = read_config(folder)
    tables: dict[str, pl.DataFrame | None] = {}
    files: dict[str, str] = {}
    for table in TABLES:
        tables[table], files[table], found = read_table(folder, table)
        problems += found
    result = check_bundle(tables, config, files=files)
    problems = order_problems(problems + result.problems)
    if problems or result.market is None:
        raise BundleError(str(folder), problems)
    return result.market, result.warnings


def read_bundle(path: str | Path) -> Market:
    """Read and validate the bundle folder ``path``; raise :class:`BundleError` if invalid."""
    return read_bundle_with_warnings(path)[0]

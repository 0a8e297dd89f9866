"""Read a dataset folder (``grid``, ``sites``, ``gpus``, ``members``) for the market maker.

Each table is ``<table>.parquet`` or ``<table>.csv`` (the Parquet file wins when both are
there). CSV is read as text by :func:`gridbridge.textcsv.read_csv_text`, Parquet by
:func:`gridbridge.tables.read_parquet`; then the required columns of :data:`SCHEMAS` are
parsed by the market bundle's column rules (:mod:`gridbridge.bundle.columns`): text cells
stripped and non-empty, numbers finite and in range (``gpus_per_node`` a whole number >= 1,
``relative_speed`` > 0, ``pue`` >= 1, ...), ``grid.hour_utc`` UTC whole hours as
``Datetime("us", "UTC")``. Other columns are kept: CSV ones as strings (an empty cell is
missing), Parquet ones as stored. Every problem in every table is collected and raised as
one :class:`~gridbridge.errors.DataImportError` naming file, row, field and fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from gridbridge.bundle.columns import NUMBERS, Range, Report, parse_table
from gridbridge.errors import DataImportError, NotFoundError, Problem
from gridbridge.tables import read_parquet
from gridbridge.textcsv import read_csv_text
from optim.market import SCHEMAS as BUNDLE_SCHEMAS

__all__ = ["REQUIRED", "SCHEMAS", "Dataset", "read_dataset"]

#: Required columns of each dataset table and their dtypes: the market bundle's columns plus
#: what the availability and bid models read.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "grid": BUNDLE_SCHEMAS["grid"],
    "sites": BUNDLE_SCHEMAS["sites"] | {"gpu_pools": pl.String(), "timezone": pl.String()},
    "gpus": BUNDLE_SCHEMAS["gpus"]
    | {
        "relative_speed": pl.Float64(),
        "gpus_per_node": pl.Int64(),
        "ref_ask_eur_per_gpu_hour": pl.Float64(),
    },
    "members": BUNDLE_SCHEMAS["members"],
}
REQUIRED = {name: tuple(schema) for name, schema in SCHEMAS.items()}
_NUMBERS = NUMBERS | {
    ("gpus", "relative_speed"): (
        Range(0, low_open=True),
        "write the GPU's training speed relative to an H100 (H100 = 1.0), > 0, e.g. 0.43",
    ),
    ("gpus", "gpus_per_node"): (
        Range(0, low_open=True, integer=True),
        "write how many GPUs one node holds as a whole number, 1 or more, e.g. 8",
    ),
    ("gpus", "ref_ask_eur_per_gpu_hour"): (
        Range(0),
        "write the reference ask in EUR per GPU-hour, 0 or more, e.g. 1.1",
    ),
}


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset's four tables, typed (grid's ``hour_utc`` as UTC datetimes)."""

    grid: pl.DataFrame
    sites: pl.DataFrame
    gpus: pl.DataFrame
    members: pl.DataFrame


def _read_table(folder: Path, name: str) -> tuple[pl.DataFrame | None, list[Problem]]:
    """One table, typed: ``(frame, [])``, or ``(None, problems)``."""
    csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
    if parquet.is_file():
        path = parquet
        raw, problems = read_parquet(parquet, str(parquet))
    elif csv.is_file():
        path = csv
        header_fix = f"the first line must be the header, with at least {','.join(REQUIRED[name])}"
        raw, problems = read_csv_text(csv, header_fix=header_fix)
    else:
        raise NotFoundError(
            f"dataset {folder} has no {name}.csv or {name}.parquet; build it with "
            "`gridbridge data build` or point --dataset at datasets/bridge-2023"
        )
    if raw is None:
        return None, problems
    rep = Report()
    table = parse_table(rep, name, str(path), raw, schema=SCHEMAS[name], numbers=_NUMBERS)
    if rep.problems:
        return None, rep.problems
    # An empty text cell in another column is a missing value, as polars' CSV reader has it.
    extras = [c for c, dtype in raw.schema.items() if c not in table.typed and dtype == pl.String]
    return raw.with_columns(
        *table.typed.values(), *(pl.col(c).replace("", None) for c in extras)
    ), []


def read_dataset(folder: Path) -> Dataset:
    """Load and type a dataset folder.

    Raises :class:`NotFoundError` if a table is missing and :class:`DataImportError`
    listing every problem of every table (unreadable file, missing column, bad cell).
    """
    tables: dict[str, pl.DataFrame] = {}
    problems: list[Problem] = []
    for name in SCHEMAS:
        frame, found = _read_table(folder, name)
        problems += found
        if frame is not None:
            tables[name] = frame
    if problems:
        raise DataImportError.from_problems(problems)
    return Dataset(**tables)

"""Read a dataset folder (``grid``, ``sites``, ``gpus``, ``members``) for the market maker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from gridbridge.errors import DataImportError, NotFoundError
from gridbridge.hours import parse_hour_column

REQUIRED = {
    "grid": ("zone", "hour_utc", "carbon_direct_g_per_kwh", "carbon_lifecycle_g_per_kwh",
             "price_eur_per_mwh"),
    "sites": ("site_id", "member", "zone", "jurisdiction", "lat", "lon", "pue",
              "tariff_adder_eur_per_mwh", "gpu_pools", "timezone"),
    "gpus": ("gpu_type", "it_kw", "board_kw", "relative_speed", "gpus_per_node",
             "ref_ask_eur_per_gpu_hour"),
    "members": ("member", "name", "pledge_share"),
}


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset's four tables, typed (grid's ``hour_utc`` as UTC datetimes)."""

    grid: pl.DataFrame
    sites: pl.DataFrame
    gpus: pl.DataFrame
    members: pl.DataFrame


def _read_table(folder: Path, name: str) -> pl.DataFrame:
    csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
    if parquet.is_file():
        frame = pl.read_parquet(parquet)
    elif csv.is_file():
        frame = pl.read_csv(csv, infer_schema_length=10_000)
    else:
        raise NotFoundError(
            f"dataset {folder} has no {name}.csv or {name}.parquet; build it with "
            "`gridbridge data build` or point --dataset at datasets/bridge-2023"
        )
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    if missing:
        raise DataImportError(f"{folder}/{name}: missing column(s) {missing}")
    return frame


def read_dataset(folder: Path) -> Dataset:
    """Load and type a dataset folder; raise a clear error if a table or column is missing."""
    grid = _read_table(folder, "grid")
    if grid.schema["hour_utc"] == pl.String:
        parsed, errors = parse_hour_column(grid["hour_utc"])
        if errors:
            row, exc = next(iter(errors.items()))
            raise DataImportError(f"{folder}/grid row {row + 1}, field 'hour_utc': {exc}")
        grid = grid.with_columns(parsed)
    return Dataset(
        grid=grid,
        sites=_read_table(folder, "sites"),
        gpus=_read_table(folder, "gpus"),
        members=_read_table(folder, "members"),
    )

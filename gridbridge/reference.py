"""Readers for the static reference tables: the TOP500 extract and the hand-written facts.

Both are small CSVs (see ../shared/data/SOURCES.md §3), read as text by
:mod:`gridbridge.textcsv`, so a malformed file is a :class:`DataImportError` naming the file,
row and fix. Power in W in the files; the builder converts to kW.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gridbridge.errors import DataImportError, NotFoundError
from gridbridge.textcsv import load_csv_text

TOP500_COLUMNS = ("rank", "system_name", "site", "country", "accelerator", "est_accelerator_count")
FACTS_COLUMNS = ("category", "subject", "zone", "value", "unit", "source")


def _read(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist; point --source at the raw data folder")
    frame = load_csv_text(
        path, header_fix=f"the first line must be the header, with at least {','.join(required)}"
    )
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataImportError(
            f"{path} lacks column(s) {missing}; expected at least {list(required)}"
        )
    # An empty cell is a missing value (null), as polars' CSV reader has it.
    return frame.with_columns(pl.all().replace("", None))


def read_top500(path: Path) -> pl.DataFrame:
    """The TOP500 extract with ``rank`` as Int64 and ``est_accelerator_count`` as Float64."""
    frame = _read(path, TOP500_COLUMNS)
    return frame.with_columns(
        pl.col("rank").cast(pl.Int64, strict=False),
        pl.col("est_accelerator_count").cast(pl.Float64, strict=False),
    )


def read_facts(path: Path) -> pl.DataFrame:
    """``facts_manual.csv`` as strings (values mix numbers, ranges and text)."""
    return _read(path, FACTS_COLUMNS)


def gpu_board_kw(facts: pl.DataFrame, subject: str) -> tuple[float, str]:
    """Board power (kW) of the ``gpu_power`` fact named ``subject``, and its source."""
    row = facts.filter((pl.col("category") == "gpu_power") & (pl.col("subject") == subject))
    if row.height != 1:
        raise DataImportError(
            f"facts_manual.csv has {row.height} gpu_power rows for '{subject}'; "
            "fix the recipe's 'fact' name to match the file's subject exactly"
        )
    watts = float(row["value"][0])
    return watts / 1000.0, f"facts_manual.csv gpu_power '{subject}': {row['source'][0]}"

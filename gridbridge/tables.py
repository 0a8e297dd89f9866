"""Write GridBridge tables to CSV or Parquet, chosen by the file extension.

CSV stores every UTC datetime column in the project's one text form, ``2023-07-03T14:00Z``
(:data:`gridbridge.hours.HOUR_FORMAT`); Parquet keeps the typed ``Datetime("us", "UTC")``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gridbridge.errors import InputError
from gridbridge.hours import HOUR_FORMAT

__all__ = ["TABLE_SUFFIXES", "check_table_path", "write_table"]

TABLE_SUFFIXES = (".csv", ".parquet")


def check_table_path(path: str | Path) -> Path:
    """Return ``path`` if it ends in .csv or .parquet; otherwise raise :class:`InputError`.

    Commands call this before doing any work so a typo in ``--out`` fails fast.
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(
            f"{path}: cannot write a table with extension '{path.suffix or '(none)'}' — fix: "
            "name the output file .csv or .parquet"
        )
    return path


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` (.csv or .parquet), creating parent folders."""
    path = check_table_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.write_parquet(path)
        return path
    stamps = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    # Convert to UTC first so the literal "Z" in HOUR_FORMAT is always true.
    frame.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime(HOUR_FORMAT) for c in stamps
    ).write_csv(path)
    return path

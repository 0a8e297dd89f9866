"""Read and write GridBridge tables as CSV or Parquet, chosen by the file extension.

CSV stores every UTC datetime column in the project's one text form, ``2023-07-03T14:00Z``
(:data:`gridbridge.hours.HOUR_FORMAT`); Parquet keeps the typed ``Datetime("us", "UTC")``.
Every file is written to a temporary sibling and renamed into place, so a crash never
leaves a truncated table. CSV is read as text by :mod:`gridbridge.textcsv`; Parquet by
:func:`read_parquet`, which turns whatever the reader raises into one :class:`Problem`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

import polars as pl

from gridbridge.errors import InputError, Problem
from gridbridge.hours import HOUR_FORMAT

__all__ = [
    "TABLE_SUFFIXES",
    "check_table_path",
    "csv_times",
    "read_parquet",
    "replace_file",
    "write_csv",
    "write_table",
]

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


def csv_times(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its datetime columns as the text CSV stores.

    A zoned column is converted to UTC and written ``2023-07-03T14:00Z`` when every value is
    a whole hour, else with seconds and fraction (``2023-07-03T14:30:00Z``), so no value is
    rounded; a tz-naive column is written without an offset (``2023-07-03T14:00:00``).
    """
    changes: list[pl.Series] = []
    for column in frame.get_columns():
        if not isinstance(column.dtype, pl.Datetime):
            continue
        dtype = cast(pl.Datetime, column.dtype)
        if dtype.time_zone is None:
            changes.append(column.dt.strftime("%Y-%m-%dT%H:%M:%S%.f"))
            continue
        # Convert to UTC first so the literal "Z" is always true.
        utc = column.dt.convert_time_zone("UTC")
        whole = bool((utc.dt.truncate("1h") == utc).all())
        changes.append(utc.dt.strftime(HOUR_FORMAT if whole else "%Y-%m-%dT%H:%M:%S%.fZ"))
    return frame.with_columns(changes) if changes else frame


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary sibling of ``path``, then rename it into place.

    The rename is atomic on one filesystem: readers see the old file or the new one, never
    a half-written one; on failure the temporary file is removed and ``path`` is untouched.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV (times by :func:`csv_times`, ``\\n`` line ends), atomically."""
    text = csv_times(frame)
    replace_file(path, lambda p: text.write_csv(p, line_terminator="\n"))


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` (.csv or .parquet), creating parent folders."""
    path = check_table_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        replace_file(path, frame.write_parquet)
    else:
        write_csv(frame, path)
    return path


def read_parquet(path: Path, file: str) -> tuple[pl.DataFrame | None, list[Problem]]:
    """Read a Parquet file: ``(frame, [])``, or ``(None, [problem])`` naming ``file``."""
    try:
        return pl.read_parquet(path), []
    # Corrupt or foreign files make the Parquet reader raise many kinds of errors (polars,
    # OS, arrow); whichever it is, the user needs one clear line, not a traceback.
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, [
            Problem(
                file,
                None,
                None,
                f"is not a readable Parquet file: {first}",
                "re-export the table as Parquet, or write it as CSV instead",
            )
        ]

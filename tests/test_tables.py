"""Writing tables: one CSV time form for every GridBridge table, written atomically."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from gridbridge.tables import csv_times, replace_file, write_table


def test_csv_times_whole_hours_and_exact_times() -> None:
    frame = pl.DataFrame(
        {
            "whole": [datetime(2023, 7, 3, 14, tzinfo=UTC)],
            "minutes": [datetime(2023, 7, 3, 14, 30, tzinfo=UTC)],
            "naive": [datetime(2023, 7, 3, 14)],
        }
    ).with_columns(pl.col("whole").dt.convert_time_zone("Europe/Berlin"))
    row = csv_times(frame).row(0, named=True)
    assert row["whole"] == "2023-07-03T14:00Z"  # converted back to UTC
    assert row["minutes"] == "2023-07-03T14:30:00Z"  # never rounded to the hour
    assert row["naive"].startswith("2023-07-03T14:00:00") and "Z" not in row["naive"]


def test_write_table_csv_and_parquet(tmp_path: Path) -> None:
    frame = pl.DataFrame({"hour_utc": [datetime(2023, 1, 1, tzinfo=UTC)], "x": [1.5]})
    csv = write_table(frame, tmp_path / "deep" / "t.csv")
    assert csv.read_text() == "hour_utc,x\n2023-01-01T00:00Z,1.5\n"
    parquet = write_table(frame, tmp_path / "t.parquet")
    assert pl.read_parquet(parquet).equals(frame)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["t.csv", "t.parquet"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("old\n")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_file(path, fail)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]

"""Write report tables: one CSV or Parquet file per table, or one Excel workbook.

* ``csv`` — ``<table>.csv`` each, times as ``2023-07-03T14:00Z``
  (:func:`gridbridge.tables.write_csv`), ``\\n`` line ends;
* ``parquet`` — ``<table>.parquet`` each, typed (times ``Datetime("us", "UTC")``), zstd
  level 3 with statistics, stated explicitly so a polars default changing cannot change bytes;
* ``xlsx`` — one workbook :data:`WORKBOOK` with a sheet per table (in the order given), the
  header row bold and frozen, numbers as numbers (EUR as ``#,##0.00``), times as Excel
  date-times in UTC (Excel has no time zones).

CSV and Parquet files are byte-identical for equal tables. The workbook's creation time is
the round's window start (from ``alliance_summary``), not the wall clock, so it too is the
same from run to run. Every file goes to a temporary sibling and is renamed into place.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

import polars as pl
import xlsxwriter

from gridbridge.errors import InputError
from gridbridge.tables import replace_file, write_csv

__all__ = ["FORMATS", "WORKBOOK", "ReportFormat", "report_bytes", "write_reports"]

ReportFormat = Literal["csv", "parquet", "xlsx"]
FORMATS: tuple[str, ...] = get_args(ReportFormat)
WORKBOOK = "settlement.xlsx"
#: Excel's limit on a sheet name.
SHEET_NAME_MAX = 31
HEADER_FORMAT = {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": False}
#: Stand-in creation time for a workbook without a round window (xlsxwriter's default is now).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MONEY = "#,##0.00"
_CENTS = "#,##0"


def _excel_formats(frame: pl.DataFrame) -> dict[str, str]:
    """Number formats by column: EUR to the cent, cents whole, utilisation as a percentage."""
    formats: dict[str, str] = {}
    for name, dtype in frame.schema.items():
        if dtype.is_float() and (name.endswith("_eur") or name.endswith("Cost")):
            formats[name] = _MONEY
        elif dtype.is_integer() and (name.endswith("_cents") or name == "x_AmountCents"):
            formats[name] = _CENTS
        elif name == "utilisation" or name.startswith("kg_per_work_h_reduction"):
            formats[name] = "0.00%"
        elif isinstance(dtype, pl.Datetime):
            formats[name] = "yyyy-mm-dd hh:mm"
        elif isinstance(dtype, pl.Date):
            formats[name] = "yyyy-mm-dd"
    return formats


def _naive_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Zoned datetime columns as naive UTC: xlsxwriter refuses zoned values."""
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None)


def _created(tables: dict[str, pl.DataFrame]) -> datetime:
    summary = tables.get("alliance_summary")
    if summary is not None and "window_start_utc" in summary.columns and summary.height:
        start = summary["window_start_utc"][0]
        if isinstance(start, datetime):
            return start
    return _EPOCH


def _sheet_names(names: list[str]) -> list[str]:
    sheets = [name[:SHEET_NAME_MAX] for name in names]
    if len(set(sheets)) != len(sheets):
        raise InputError(f"report tables {', '.join(names)} give repeated sheet names once cut "
                         f"to Excel's {SHEET_NAME_MAX} characters — fix: rename the tables")
    return sheets


def _write_workbook(tables: dict[str, pl.DataFrame], path: Path) -> None:
    sheets = _sheet_names(list(tables))

    def write(tmp: Path) -> None:
        workbook = xlsxwriter.Workbook(str(tmp))
        try:
            # The default is the wall clock; the round's own time keeps re-runs alike.
            workbook.set_properties({"created": _created(tables).replace(tzinfo=None),
                                     "title": "GridBridge settlement"})
            for (name, frame), sheet in zip(tables.items(), sheets, strict=True):
                _naive_utc(frame).write_excel(
                    workbook, sheet, table_name=name, header_format=HEADER_FORMAT,
                    freeze_panes="A2", autofit=True, column_formats=_excel_formats(frame),
                    float_precision=3)
        finally:
            workbook.close()

    replace_file(path, write)


def write_reports(tables: dict[str, pl.DataFrame], out_dir: Path,
                  fmt: ReportFormat | str = "csv") -> list[Path]:
    """Write ``tables`` into ``out_dir`` (created) as ``fmt``; returns the paths written.

    ``csv`` and ``parquet``: one ``<name>.<fmt>`` per table, in the order of ``tables``;
    ``xlsx``: the one workbook :data:`WORKBOOK`. Raises :class:`InputError` for another
    format.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown report format '{fmt}' — fix: use one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        _write_workbook(tables, out / WORKBOOK)
        return [out / WORKBOOK]
    paths: list[Path] = []
    for name, frame in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            write_csv(frame, path)
        else:
            replace_file(path, lambda tmp, f=frame: f.write_parquet(
                tmp, compression="zstd", compression_level=3, statistics=True))
        paths.append(path)
    return paths


def report_bytes(tables: dict[str, pl.DataFrame], fmt: ReportFormat | str) -> bytes:
    """The bytes of the one file :func:`write_reports` writes for ``tables`` as ``fmt`` (one
    table as csv or parquet, or every table as the workbook): what a download serves, the
    same bytes ``gridbridge report`` writes."""
    with tempfile.TemporaryDirectory(prefix="gridbridge-report-") as folder:
        paths = write_reports(tables, Path(folder), fmt)
        if len(paths) != 1:
            raise InputError(f"{len(paths)} files for one download — fix: ask for one table "
                             "as csv or parquet, or the xlsx workbook")
        return paths[0].read_bytes()

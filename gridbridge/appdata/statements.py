"""Settlement statements for the app: the tables of :mod:`gridbridge.reports` and their files.

Files are written by :func:`gridbridge.reports.write_reports`, the function behind
``gridbridge report``, so a download is byte-identical to what that command writes for the
same round: ``<table>.csv`` / ``<table>.parquet`` per table, ``settlement.xlsx`` with every
table. Signs follow the ledger (+ the account receives) except ``cross_border``, which gives
what the payer paid (EUR, positive).
"""

from __future__ import annotations

import polars as pl

from gridbridge.exchange.reports import MEMBER_TABLES, split_name
from gridbridge.reports import REPORT_TABLES, WORKBOOK
from gridbridge.reports import report_bytes as write_report_bytes

__all__ = ["MEMBER_TABLES", "cross_border_cells", "file_names", "report_bytes"]


def file_names(tables: tuple[str, ...] = REPORT_TABLES, *, workbook: bool = True) -> list[str]:
    """The downloadable file names: ``<table>.csv``, ``<table>.parquet``, then the
    workbook."""
    names = [f"{t}.{fmt}" for fmt in ("csv", "parquet") for t in tables]
    return [*names, WORKBOOK] if workbook else names


def report_bytes(tables: dict[str, pl.DataFrame], name: str) -> bytes:
    """The bytes of report file ``name`` (:func:`file_names`) as ``gridbridge report``
    writes it from ``tables``; :class:`~gridbridge.errors.NotFoundError` for another
    name."""
    table, fmt = split_name(name)
    return write_report_bytes(tables if table is None else {table: tables[table]}, fmt)


def cross_border_cells(cross_border: pl.DataFrame) -> pl.DataFrame:
    """The who-pays-whom matrix as cells: ``payer_member``, ``site_member`` (whose sites
    were paid), ``paid_eur`` (EUR the payer paid them, net)."""
    cells = [c for c in cross_border.columns if c.startswith("to_") and c.endswith("_eur")]
    return cross_border.unpivot(index="payer_member", on=cells, variable_name="site_member",
                                value_name="paid_eur").with_columns(
        pl.col("site_member").str.strip_prefix("to_").str.strip_suffix("_eur")).sort(
        "payer_member", "site_member")

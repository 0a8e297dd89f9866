"""A round's settlement reports built from the exchange's database, as downloadable files.

The tables are :mod:`gridbridge.reports`'s (:data:`~gridbridge.reports.REPORT_TABLES`),
built from what the database holds for a ``cleared`` or ``settled`` round (409 before): the
stored bundle (market), the placements, the rejected bids, the summary, the ledger lines
including metering corrections, and the true-up records of its metering reports (the
``metering`` table). Files: ``<table>.csv`` / ``<table>.parquet`` (one table) and
``settlement.xlsx`` (every table, a sheet each), written by
:func:`gridbridge.reports.write_reports`, so CSV and Parquet are byte-identical for the same
stored state and equal to what ``gridbridge report`` writes for the same inputs.
"""

from __future__ import annotations

import orjson
import polars as pl
import sqlalchemy as sa

from gridbridge.errors import NotFoundError
from gridbridge.exchange import schema as t
from gridbridge.exchange.metering import placements_frame
from gridbridge.exchange.results import _cleared
from gridbridge.exchange.snapshot import read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.worker import _market
from gridbridge.ledger.schema import POSTING_SCHEMA
from gridbridge.ledger.store import ledger_postings
from gridbridge.reports import (
    REPORT_TABLES,
    WORKBOOK,
    build_reports_from,
    report_bytes,
    round_from_tables,
)
from gridbridge.settlement.trueup import RECORD_SCHEMA

__all__ = ["MEDIA_TYPES", "MEMBER_TABLES", "report_file", "split_name"]

#: Content type by file suffix.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: The tables a member may download, filtered to its own rows (column ``member``).
MEMBER_TABLES = ("member_statements", "member_totals")


def split_name(name: str) -> tuple[str | None, str]:
    """``(table, format)`` of a report file name: ``(None, "xlsx")`` for the workbook;
    :class:`NotFoundError` for anything else."""
    if name == WORKBOOK:
        return None, "xlsx"
    table, _, fmt = name.rpartition(".")
    if table in REPORT_TABLES and fmt in ("csv", "parquet"):
        return table, fmt
    raise NotFoundError(
        f"no report named '{name}' — fix: ask for {WORKBOOK} or <table>.csv / "
        f"<table>.parquet with a table among {', '.join(REPORT_TABLES)}")


def round_tables(store: ExchangeStore, round_id: str,
                 names: tuple[str, ...] = REPORT_TABLES) -> dict[str, pl.DataFrame]:
    """The report tables ``names`` of a cleared (or settled) round, built from what the
    exchange stored: its bundle, placements, rejections, summary, ledger lines (with
    corrections) and true-up records."""
    with store.read() as conn:
        _cleared(conn, round_id)
        market = _market(read_bundle_rows(conn, round_id), round_id)
        summary = orjson.loads(conn.execute(
            sa.select(t.round_runs.c.summary_json)
            .where(t.round_runs.c.round_id == round_id)).scalar_one())
        placed = list(conn.execute(sa.select(t.placements)
                                   .where(t.placements.c.round_id == round_id)).mappings())
        rejected = [(f"{r.member}:{r.bid_id}", r.reason, r.lost_opportunity_eur)
                    for r in conn.execute(sa.select(t.rejected)
                                          .where(t.rejected.c.round_id == round_id))]
        lines = [tuple(r) for r in conn.execute(
            sa.select(*(ledger_postings.c[c] for c in POSTING_SCHEMA))
            .where(ledger_postings.c.round_id == round_id))]
        records = [tuple(r) for r in conn.execute(
            sa.select(t.trueup_records.c.batch_id,
                      *(t.trueup_records.c[c] for c in RECORD_SCHEMA))
            .where(t.trueup_records.c.round_id == round_id))]
    metering = pl.DataFrame(records, schema={"batch_id": pl.String, **RECORD_SCHEMA},
                            orient="row").sort("batch_id", "bid_id")
    inputs = round_from_tables(
        round_id, summary, placements_frame(placed),
        pl.DataFrame(rejected, schema={"bid_id": pl.String, "reason": pl.String,
                                       "lost_opportunity_eur": pl.Float64}, orient="row"),
        pl.DataFrame(lines, schema=POSTING_SCHEMA, orient="row"), market, metering,
        source=f"exchange round {round_id}")
    return build_reports_from(inputs, names)


def report_file(store: ExchangeStore, round_id: str, name: str,
                member: str | None = None) -> tuple[bytes, str]:
    """The bytes and content type of report file ``name`` of round ``round_id``; with
    ``member``, only that member's rows (the caller allows only :data:`MEMBER_TABLES`)."""
    table, fmt = split_name(name)
    names = REPORT_TABLES if table is None else (table,)
    tables = round_tables(store, round_id, names)
    if member is not None:
        tables = {n: f.filter(pl.col("member") == member) for n, f in tables.items()}
    return report_bytes(tables, fmt), MEDIA_TYPES[fmt]

"""``gridbridge report``: a cleared round's settlement reports as CSV, Parquet or Excel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from gridbridge.cli.output import make_console
from gridbridge.errors import InputError, NotFoundError
from gridbridge.reports import FORMATS, build_reports, read_round_id, write_reports

console = make_console()

#: alliance_summary columns printed after a report, with their labels and number formats.
TOTALS = (("carbon_price_eur_per_t", "carbon price (EUR/t CO2eq)", ",.2f"),
          ("welfare_eur", "welfare (EUR)", ",.2f"), ("surplus_eur", "surplus (EUR)", ",.2f"),
          ("emissions_kg", "emissions (kg CO2eq)", ",.2f"),
          ("kg_per_work_h", "kg CO2eq per work-hour", ".6f"),
          ("kg_per_work_h_reduction_vs_carbon_blind", "  reduction vs carbon-blind greedy",
           "+.2%"),
          ("kg_per_work_h_reduction_vs_carbon_aware", "  reduction vs carbon-aware greedy",
           "+.2%"),
          ("members_paid_eur", "members paid, ledger (EUR)", ",.2f"),
          ("sites_received_eur", "sites received, ledger (EUR)", ",.2f"),
          ("payments_eur", "payments, clearing (EUR)", ",.2f"),
          ("uplift_eur", "uplift, clearing (EUR)", ",.2f"),
          ("congestion_revenue_eur", "congestion revenue (EUR)", ",.2f"),
          ("carbon_fund_inflow_eur", "carbon fund inflow (EUR)", ",.2f"),
          ("carbon_fund_balance_eur", "carbon fund balance (EUR)", ",.2f"),
          ("paradoxically_rejected", "bids rejected paradoxically", ",d"),
          ("paradoxically_rejected_value_eur", "  their lost opportunity (EUR)", ",.2f"),
          ("ledger_lines", "ledger lines", ",d"),
          ("ledger_sum_cents", "ledger sum (cents, must be 0)", "d"))


def _postings_from_db(out_dir: Path, url: str) -> pl.DataFrame:
    """The round's lines from the ledger database at ``url``; NotFoundError if not posted."""
    round_id = read_round_id(out_dir)
    # Imported here so reports from ledger.csv work without the database layer.
    from gridbridge.ledger import Ledger

    with Ledger.open(url) as ledger:
        postings = ledger.postings(round_id)
        shown = ledger.url
    if postings.height == 0:
        raise NotFoundError(f"round {round_id} is not in the ledger at {shown} — fix: run "
                            f"gridbridge ledger post {out_dir} --db {url}")
    return postings


def _totals(summary: pl.DataFrame) -> Table:
    row = summary.row(0, named=True)
    table = Table(title=f"round {row['round_id']}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    start, end = row["window_start_utc"], row["window_end_utc"]
    if start is not None and end is not None:
        table.add_row("window (UTC, end exclusive)",
                      f"{start:%Y-%m-%dT%H:%MZ} to {end:%Y-%m-%dT%H:%MZ}")
    table.add_row("carbon signal", str(row["carbon_signal"]))
    for key, label, spec in TOTALS:
        value = row.get(key)
        table.add_row(label, "" if value is None else format(value, spec))
    return table


def report_command(
    out_dir: Annotated[Path | None, typer.Argument(
        help="Clearing folder written by gridbridge clear BUNDLE --out OUT_DIR (omit it "
             "with --db URL --round ID to report a round of the exchange).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="csv or parquet (one file per table) or xlsx (one workbook).")] = "csv",
    out: Annotated[Path | None, typer.Option(
        help="Folder for the reports (default: OUT_DIR/reports).", show_default=False)] = None,
    db: Annotated[str | None, typer.Option(
        help="Ledger database URL: read the round's lines from it, not from ledger.csv.",
        show_default=False)] = None,
    round_id: Annotated[str | None, typer.Option(
        "--round", help="With --db and no OUT_DIR: a round cleared by the exchange.",
        show_default=False)] = None,
) -> None:
    """Settlement reports of a cleared round, reconciled to the cent with its ledger."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if out_dir is None:
        _exchange_report(db, round_id, fmt, out)
        return
    target = out if out is not None else out_dir / "reports"
    if out_dir.is_dir() and target.resolve() == out_dir.resolve():
        raise InputError(f"--out {target} is the clearing folder itself, where the report's "
                         "ledger.csv would replace the round's — fix: leave --out out (reports "
                         "go to OUT_DIR/reports) or name another folder")
    postings = _postings_from_db(out_dir, db) if db is not None else None
    _write(build_reports(out_dir, postings), target, fmt)


def _exchange_report(db: str | None, round_id: str | None, fmt: str, out: Path | None) -> None:
    """Reports of a round the exchange cleared, read from its database."""
    if db is None or round_id is None or out is None:
        raise InputError("give either OUT_DIR (a gridbridge clear folder) or --db URL --round "
                         "ID --out DIR (a round of the exchange)")
    from gridbridge.exchange.reports import round_tables
    from gridbridge.exchange.storage import ExchangeStore

    with ExchangeStore.open(db) as store:
        tables = round_tables(store, round_id)
    _write(tables, out, fmt)


def _write(tables: dict[str, pl.DataFrame], out: Path, fmt: str) -> None:
    """Write the report files, say where, and print the alliance's totals."""
    for path in write_reports(tables, out, fmt):
        console.print(f"wrote {path}")
    console.print(_totals(tables["alliance_summary"]))

"""``gridbridge trueup``: post a metering batch's corrections for a cleared round."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from gridbridge.bundle import read_bundle
from gridbridge.clearing import read_clearing
from gridbridge.errors import InputError, LedgerError
from gridbridge.hours import parse_hour
from gridbridge.ledger import read_postings_csv
from gridbridge.settlement.trueup import RECORD_FILE, read_metering, true_up
from gridbridge.tables import write_csv

console = Console(highlight=False, soft_wrap=True)


def trueup_command(
    out: Annotated[Path, typer.Argument(help="Folder of the cleared round (gridbridge clear).")],
    metering: Annotated[Path, typer.Argument(
        help="Metering CSV/Parquet: bid_id, hour_utc, energy_kwh[, carbon_g_per_kwh].")],
    db: Annotated[str | None, typer.Option(
        help="Also post the corrections to this ledger database (SQLAlchemy URL).")] = None,
) -> None:
    """Post correction lines so energy cost and carbon fee follow metered use.

    Writes trueup-<batch>.csv (forecast, actual, difference per placement) and appends the
    batch's lines to ledger.csv; the same metering file is one batch and is refused twice.
    """
    clearing = read_clearing(out)
    summary = clearing.summary
    round_id, bundle = summary.get("round_id"), summary.get("bundle")
    if not isinstance(round_id, str) or not isinstance(bundle, str):
        raise InputError(f"{out / 'summary.json'} names no round_id or bundle — fix: re-run "
                         "gridbridge clear to write them")
    market = read_bundle(out / bundle)
    frame, batch_id = read_metering(metering)
    ledger = read_postings_csv(out / "ledger.csv", fix="clear the round with pricing first "
                               f"(gridbridge clear BUNDLE --out {out})")
    if ledger["posting_id"].str.starts_with(f"{round_id}:{batch_id}:").any():
        raise LedgerError(f"metering batch {batch_id} ({metering}) is already posted for round "
                          f"{round_id}; a batch is never posted twice")
    result = true_up(market, clearing.placements, frame, round_id=round_id,
                     batch_id=batch_id, posted_at_utc=parse_hour(str(summary[
                         "window_start_utc"])),
                     carbon_price_eur_per_t=float(summary["carbon_price_eur_per_t"]),
                     source=str(metering))
    if db is not None:
        from gridbridge.ledger import Ledger

        store = Ledger.open(db)
        try:
            store.post_corrections(round_id, batch_id, result.postings)
        finally:
            store.close()
    write_csv(result.records, out / RECORD_FILE.format(batch=batch_id))
    write_csv(pl.concat([ledger, result.postings]), out / "ledger.csv")
    r = result.records
    console.print(
        f"true-up {batch_id} for round {round_id}: {r.height} placement(s), energy "
        f"{r['difference_kwh'].sum():+,.3f} kWh, emissions {r['difference_kg'].sum():+,.3f} kg, "
        f"energy cost {r['difference_energy_cost_eur'].sum():+,.2f} EUR, carbon fee "
        f"{r['difference_carbon_fee_eur'].sum():+,.2f} EUR; {result.postings.height} "
        f"correction line(s) summing to {int(result.postings['amount_cents'].sum())} cents")
    console.print(f"wrote {out / f'trueup-{batch_id}.csv'} and appended to {out / 'ledger.csv'}")

"""The CLI's one way to print: a rich console that keeps table rows whole when piped, and
the tables more than one command prints."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from rich.console import Console
from rich.table import Table

__all__ = ["COMPARISON_ROWS", "comparison_table", "make_console", "net_positions_table"]

#: The figures of a clearing and its baselines, as summary.json names them, with labels.
COMPARISON_ROWS = (
    ("welfare_eur", "welfare (EUR)"), ("surplus_eur", "surplus (EUR)"),
    ("accepted", "bids accepted"), ("gpu_hours", "GPU-hours"), ("work_h", "work (GPU-h)"),
    ("energy_kwh", "energy (kWh)"), ("emissions_kg", "emissions (kg CO2eq)"),
    ("kg_per_work_h", "kg CO2eq per work-hour"), ("kg_per_gpu_hour", "kg CO2eq per GPU-hour"),
    ("energy_cost_eur", "energy cost (EUR)"), ("ask_eur", "asks (EUR)"))


def make_console() -> Console:
    """A console for stdout; piped or captured, 160 columns wide so that rich does not wrap
    tables at its 80-column default."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console


def comparison_table(title: str, figures: Mapping[str, Mapping[str, object]]) -> Table:
    """One column per clearing (``optimum`` and the baselines, in the order given), one row
    per :data:`COMPARISON_ROWS` figure, from summary.json-style dicts."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    for name in figures:
        table.add_column(name.replace("_", " "), justify="right")
    for key, label in COMPARISON_ROWS:
        cells = []
        for found in figures.values():
            value = float(found[key])  # type: ignore[arg-type]
            cells.append(f"{value:,.3f}" if key.startswith("kg_per") else
                         f"{value:,.0f}" if key == "accepted" else f"{value:,.2f}")
        table.add_row(label, *cells)
    return table


def net_positions_table(ledger: pl.DataFrame,
                        title: str = "net position after the round") -> Table:
    """Each account's net position (EUR; + receives, − pays) from ledger lines (columns
    ``account`` and ``amount_cents``), with the total (0 when the ledger balances)."""
    table = Table(title=f"{title} (EUR; + receives, − pays)")
    table.add_column("account")
    table.add_column("EUR", justify="right")
    balances = ledger.group_by("account").agg(pl.col("amount_cents").sum()).sort("account")
    for account, amount in balances.iter_rows():
        table.add_row(account, f"{amount / 100:,.2f}")
    table.add_row("total", f"{int(balances['amount_cents'].sum()) / 100:,.2f}")
    return table

"""``gridbridge market ...``: make, validate and summarise market bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import polars as pl
import typer
from rich.table import Table

from gridbridge.bundle import read_bundle_with_warnings, write_bundle
from gridbridge.cli.output import make_console
from gridbridge.market import MakerOptions, make_market, summarize
from gridbridge.market.maker import DEFAULT_CARBON_PRICE_EUR_PER_T

app = typer.Typer(help="Make, validate and summarise market bundles.", no_args_is_help=True)
console = make_console()


@app.command()
def make(
    out: Annotated[Path, typer.Option(help="Folder to write the bundle into (replaced).")],
    week: Annotated[str, typer.Option(help="ISO week of the window, e.g. 2023-W27.")] = "2023-W27",
    bids: Annotated[int, typer.Option(help="Number of bids to draw.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives identical files.")] = 1,
    dataset: Annotated[Path, typer.Option(help="Dataset folder.")] = Path("datasets/bridge-2023"),
    carbon_price: Annotated[float, typer.Option(help="EUR per tonne CO2eq.")] = (
        DEFAULT_CARBON_PRICE_EUR_PER_T
    ),
    signal: Annotated[str, typer.Option(help="Carbon signal: direct or lifecycle.")] = "direct",
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    sites: Annotated[int | None, typer.Option(
        help="Number of sites, 1 to 256: fewer than the dataset's picks them round-robin over "
             "zones, more adds copies (SITE-C2, ...). Default: the dataset's sites.",
        show_default=False,
    )] = None,
    hours: Annotated[int | None, typer.Option(
        help="Window length in hours from the week's Monday 00:00 UTC, 1 to 8784 "
             "(336 = two weeks). Default: 168 (one week).",
        show_default=False,
    )] = None,
) -> None:
    """Build a market bundle for one week (or --hours hours) from a dataset."""
    options = MakerOptions(week=week, bids=bids, seed=seed, carbon_price_eur_per_t=carbon_price,
                           carbon_signal=signal, sites=sites, hours=hours)
    market = make_market(dataset, options)
    write_bundle(market, out, fmt=fmt)
    console.print(f"wrote {out}: {market.sites.height} sites, "
                  f"{market.capacity.height} capacity rows, {market.bids.height} bids")


@app.command()
def validate(bundle: Annotated[Path, typer.Argument(help="Bundle folder.")]) -> None:
    """Check a bundle; list every problem with file, row, field and fix."""
    market, warnings = read_bundle_with_warnings(bundle)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"{bundle} is valid: {market.bids.height} bids, {market.sites.height} sites, "
                  f"{market.config.hours} hours")


def _table(title: str, frame: pl.DataFrame) -> Table:
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        numeric = frame.schema[column].is_numeric()
        table.add_column(column, justify="right" if numeric else "left")
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int | float) else str(v)
                        for v in row))
    return table


@app.command()
def summary(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Print a readable overview: sites, GPUs by type, grid over the window, bids by size."""
    market, warnings = read_bundle_with_warnings(bundle)
    s = summarize(market)
    if as_json:
        typer.echo(orjson.dumps(s.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"[bold]Market {bundle}[/]: window {s.window} ({s.hours} h, UTC), carbon price "
                  f"{s.carbon_price_eur_per_t:g} EUR/t on the {s.carbon_signal} signal")
    console.print(f"{s.n_members} members, {s.n_sites} sites, {s.n_bids} bids; "
                  f"{s.gpu_hours_offered:,} GPU-hours offered, {s.work_h_demanded:,} GPU-hours "
                  f"of work bid for, {s.value_eur:,.2f} EUR of bid value")
    console.print(_table("Sites and pools (GPUs; ask in EUR per GPU-hour)", s.sites))
    console.print(_table("GPUs by type (GPUs; GPU-hours; it_kw in kW per GPU)", s.gpus))
    console.print(_table("Grid over the window (gCO2eq/kWh; EUR/MWh)", s.zones))
    console.print(_table("Bids by gang size (GPUs; work in GPU-hours; value in EUR)",
                         s.bids_by_size))

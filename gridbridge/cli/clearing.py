"""``gridbridge clear``, ``gridbridge check`` and ``gridbridge frontier``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridbridge.bundle import read_bundle
from gridbridge.clearing import read_clearing, write_clearing, write_frontier
from gridbridge.cli.output import comparison_table, make_console, net_positions_table
from gridbridge.errors import InputError
from gridbridge.limits import CARBON_PRICE_EUR_PER_T, EMISSIONS_CAP_T, parse_carbon_prices
from gridbridge.settlement import round_id_for, round_postings
from optim.check import check_clearing
from optim.clearing import BASELINES, Clearing, clear
from optim.frontier import frontier
from optim.options import MAX_SEED, SolveOptions

console = make_console()
err = Console(stderr=True, highlight=False)


class _Progress:
    """Phase messages on stderr, shown only once a solve has run longer than a second."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.status = err.status("clearing…")
        self.shown = False

    def __call__(self, phase: str) -> None:
        if not self.shown and time.perf_counter() - self.started > 1.0:
            self.status.start()
            self.shown = True
        self.status.update(f"clearing: {phase} ({time.perf_counter() - self.started:.0f} s)")
        if not self.shown and phase.startswith("solve"):
            self.status.start()  # the solve is the long phase: show it from its start
            self.shown = True

    def stop(self) -> None:
        self.status.stop()


#: One help text for ``--seed`` on every solving command.
SEED_HELP = f"Random seed of HiGHS and of the neighbourhood search's order (0 to {MAX_SEED})."


def _options(carbon_price: float | None, emissions_cap: float | None, time_limit: float | None,
             mip_gap: float | None, threads: int | None,
             pricing_time_limit: float | None = None,
             search_workers: int | None = None, seed: int = 0) -> SolveOptions:
    for option, value, limit in (("--carbon-price", carbon_price, CARBON_PRICE_EUR_PER_T),
                                 ("--emissions-cap", emissions_cap, EMISSIONS_CAP_T)):
        if value is not None and not limit.admits(value):
            raise InputError(f"{option} must be {limit.describe()}, not {value:g}")
    if time_limit is not None and not time_limit > 0:
        raise InputError("--time-limit must be > 0 seconds")
    if mip_gap is not None and not 0 <= mip_gap < 1:
        raise InputError("--mip-gap must be a fraction in [0, 1), e.g. 0.01 for 1 %")
    if threads is not None and threads < 1:
        raise InputError("--threads must be at least 1")
    if pricing_time_limit is not None and not pricing_time_limit > 0:
        raise InputError("--pricing-time-limit must be > 0 seconds")
    if search_workers is not None and search_workers < 1:
        raise InputError("--search-workers must be at least 1")
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed must be an integer from 0 to {MAX_SEED}, not {seed}")
    return SolveOptions(
        time_limit_s=time_limit, mip_rel_gap=mip_gap, threads=threads,
        pricing_time_limit_s=pricing_time_limit, search_workers=search_workers,
        carbon_price_eur_per_t=carbon_price,
        emissions_cap_kg=None if emissions_cap is None else emissions_cap * 1000.0, seed=seed,
    )


def _comparison(c: Clearing) -> Table:
    figures = {"optimum": c.totals.as_dict(),
               **{b: c.baselines[b].as_dict() for b in BASELINES if b in c.baselines}}
    return comparison_table(f"clearing at {c.carbon_price_eur_per_t:g} EUR/t CO2eq "
                            f"({c.carbon_signal} signal)", figures)


def clear_command(
    bundle: Annotated[Path, typer.Argument(help="Market bundle folder.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the bundle).")] = None,
    carbon_price: Annotated[float | None, typer.Option(
        help="EUR per tonne CO2eq (default: market.toml).")] = None,
    emissions_cap: Annotated[float | None, typer.Option(
        help="Cap on the round's emissions, tonnes CO2eq.")] = None,
    time_limit: Annotated[float | None, typer.Option(
        help="HiGHS time limit, seconds (default: market.toml, else 60).")] = None,
    mip_gap: Annotated[float | None, typer.Option(
        help="Relative MIP gap to stop at, a fraction (default: market.toml, else 0.01).")] = None,
    threads: Annotated[int | None, typer.Option(help="HiGHS threads.")] = None,
    pricing_time_limit: Annotated[float | None, typer.Option(
        help="Pricing LP time limit, seconds (default 600; it stops once prices are exact).")
    ] = None,
    search_workers: Annotated[int | None, typer.Option(
        help="Neighbourhoods solved at once on large markets, one process each (default: "
             "one per CPU).")] = None,
    seed: Annotated[int, typer.Option(help=SEED_HELP)] = 0,
) -> None:
    """Clear a market bundle: placements.csv, rejected.csv, summary.json, timings.json."""
    options = _options(carbon_price, emissions_cap, time_limit, mip_gap, threads,
                       pricing_time_limit, search_workers, seed)
    started = time.perf_counter()
    market = read_bundle(bundle)
    progress = _Progress()
    try:
        clearing = clear(market, options, progress)
    finally:
        progress.stop()
    target = out or bundle
    round_id = round_id_for(bundle, clearing.carbon_price_eur_per_t, clearing.emissions_cap_kg,
                            clearing.window_start_utc)
    ledger = None
    if clearing.pricing is not None:
        ledger = round_postings(round_id, clearing.window_start_utc, clearing.placements,
                                market.members)
    write_clearing(clearing, target, bundle=bundle, round_id=round_id, ledger=ledger)
    r = clearing.report
    console.print(_comparison(clearing))
    console.print(
        f"status {r.status.value}: welfare {r.objective_eur:,.2f} EUR, valid bound "
        f"{r.bound_eur:,.2f} EUR, gap {r.gap:.2%}; {clearing.totals.accepted} accepted, "
        f"{clearing.totals.rejected} rejected"
    )
    what = ("whole model" if r.method == "whole_model" else
            f"neighbourhood search: {r.neighbourhoods} models solved, the largest")
    console.print(f"{what} {r.size.variables:,} binaries, {r.size.constraints:,} rows, "
                  f"{r.size.nonzeros:,} non-zeros; {r.candidates:,} candidate placements")
    for note in r.restrictions:
        console.print(f"restricted: {note}")
    if ledger is not None:
        console.print(_pricing_line(clearing))
        console.print(net_positions_table(ledger))
    console.print(f"wrote {target} in {time.perf_counter() - started:.1f} s")


def _pricing_line(c: Clearing) -> str:
    p = c.summary()["pricing"]
    assert isinstance(p, dict)
    return (f"prices: LP relaxation {p['lp_objective_eur']:,.2f} EUR "
            f"({'converged' if p['converged'] else 'NOT converged'}); payments "
            f"{p['payments_eur']:,.2f} EUR, uplift {p['uplift_eur']:,.2f} EUR on "
            f"{p['bids_with_uplift']} bid(s), congestion revenue "
            f"{p['congestion_revenue_eur']:,.2f} EUR, carbon fund {p['carbon_fees_eur']:,.2f} "
            f"EUR; {p['paradoxically_rejected']} bid(s) rejected paradoxically (lost "
            f"opportunity {p['paradoxically_rejected_value_eur']:,.2f} EUR)")


def check_command(
    bundle: Annotated[Path, typer.Argument(help="Market bundle folder.")],
    out: Annotated[Path, typer.Argument(help="Folder holding the clearing's files.")],
) -> None:
    """Re-verify a clearing from scratch: every constraint and every reported figure."""
    market = read_bundle(bundle)
    files = read_clearing(out)
    prices = files.prices if files.prices.height else None
    report = check_clearing(market, files.placements, files.rejected, files.summary, prices)
    report.raise_if_failed()
    console.print(f"{out}: clearing is feasible and its figures add up "
                  f"({files.placements.height} placements, {files.rejected.height} rejected)")


def frontier_command(
    bundle: Annotated[Path, typer.Argument(help="Market bundle folder.")],
    carbon_prices: Annotated[str, typer.Option(
        help="Carbon prices, EUR per tonne CO2eq, comma-separated.")] = "0,100,400,1600,3200,6400",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the bundle).")] = None,
    time_limit: Annotated[float | None, typer.Option(
        help="HiGHS time limit per solve, seconds.")] = None,
    mip_gap: Annotated[float | None, typer.Option(help="Relative MIP gap, a fraction.")] = None,
    seed: Annotated[int, typer.Option(help=SEED_HELP)] = 0,
) -> None:
    """Solve once per carbon price and write frontier.csv (the cost–carbon trade-off)."""
    prices = parse_carbon_prices(carbon_prices, "--carbon-prices")
    options = _options(None, None, time_limit, mip_gap, None, seed=seed)
    market = read_bundle(bundle)
    progress = _Progress()
    try:
        frame = frontier(market, prices, options, progress)
    finally:
        progress.stop()
    path = write_frontier(frame, out or bundle)
    table = Table(title="cost–carbon trade-off", title_justify="left")
    for col in ("EUR/t", "method", "welfare EUR", "surplus EUR", "t CO2eq", "kg/work-h", "gap"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in frame.iter_rows(named=True):
        table.add_row(f"{row['carbon_price_eur_per_t']:g}", row["method"],
                      f"{row['welfare_eur']:,.0f}", f"{row['surplus_eur']:,.0f}",
                      f"{row['emissions_kg'] / 1000:,.2f}", f"{row['kg_per_work_h']:.4f}",
                      "" if row["gap"] is None else f"{row['gap']:.2%}")
    console.print(table)
    console.print(f"wrote {path}")

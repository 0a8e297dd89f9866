"""``gridbridge market make``: a market bundle for one ISO week from a dataset.

Capacity comes from :mod:`gridbridge.market.availability`, bids from
:mod:`gridbridge.market.bids`; grid rows are the dataset's hours inside the window for the
zones that have sites. The result is a validated :class:`optim.market.Market`; the same
dataset, week, bid count and seed give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from gridbridge.bundle.options import bid_options_table
from gridbridge.errors import InputError
from gridbridge.hours import HourParseError, iso_week_window
from gridbridge.market.availability import capacity_table
from gridbridge.market.bids import bids_table
from gridbridge.market.source import read_dataset
from optim.market import CARBON_SIGNALS, Market, MarketConfig

#: EU ETS allowance price, 2023 average, rounded (EUR/t CO2eq): the default carbon price.
DEFAULT_CARBON_PRICE_EUR_PER_T = 85.0
MAX_BIDS = 100_000


@dataclass(frozen=True, slots=True)
class MakerOptions:
    """What ``gridbridge market make`` builds: ISO week, bid count, seed, carbon settings."""

    week: str = "2023-W27"
    bids: int = 500
    seed: int = 1
    carbon_price_eur_per_t: float = DEFAULT_CARBON_PRICE_EUR_PER_T
    carbon_signal: str = "direct"


def make_market(dataset: Path, options: MakerOptions) -> Market:
    """Build the week's market from the dataset folder (no network, no randomness but seeds)."""
    if not 0 <= options.bids <= MAX_BIDS:
        raise InputError(f"--bids must be between 0 and {MAX_BIDS}, got {options.bids}")
    if options.carbon_signal not in CARBON_SIGNALS:
        raise InputError(f"--signal must be one of {CARBON_SIGNALS}, got '{options.carbon_signal}'")
    if not options.carbon_price_eur_per_t >= 0:
        raise InputError("--carbon-price must be a number >= 0 (EUR per tonne CO2eq)")
    try:
        start, end = iso_week_window(options.week)
    except HourParseError as exc:
        raise InputError(f"--week: {exc}; {exc.fix}") from None
    data = read_dataset(dataset)
    zones = data.sites["zone"].unique().to_list()
    grid = data.grid.filter(
        pl.col("zone").is_in(zones) & (pl.col("hour_utc") >= start) & (pl.col("hour_utc") < end)
    ).sort("zone", "hour_utc")
    config = MarketConfig(
        window_start_utc=start, window_end_utc=end,
        carbon_price_eur_per_t=float(options.carbon_price_eur_per_t),
        carbon_signal=options.carbon_signal,  # type: ignore[arg-type]
    )
    if grid.height != len(zones) * config.hours:
        have = grid["hour_utc"].min(), grid["hour_utc"].max()
        raise InputError(
            f"--week {options.week}: the dataset's grid covers {have[0]} to {have[1]}, not the "
            f"whole week; pick a week inside the dataset's year"
        )
    hours = config.hour_slots()
    bids = bids_table(options.bids, options.seed, f"{options.week}-", data.members, data.gpus,
                      data.sites, start, config.hours)
    return Market(
        config=config,
        # read_dataset already types every required column the Market checks.
        members=data.members,
        gpus=data.gpus,
        sites=data.sites,
        capacity=capacity_table(data.sites, data.gpus, hours, options.seed),
        grid=grid,
        bids=bids,
        bid_options=bid_options_table(bids),
    )

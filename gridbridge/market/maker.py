"""``gridbridge market make``: a market bundle for one ISO week (or more hours) from a dataset.

The window starts at the ISO week's Monday 00:00 UTC and lasts one week (168 h), or
``hours`` hours when :attr:`MakerOptions.hours` is set (1 to :data:`MAX_HOURS`; 336 is two
weeks). The sites are the dataset's, or ``sites`` of them chosen or copied by
:func:`gridbridge.market.scale.select_sites` when :attr:`MakerOptions.sites` is set (for
benchmark markets of a chosen size). Capacity comes from
:mod:`gridbridge.market.availability`, bids from :mod:`gridbridge.market.bids`, both over
the chosen sites and window; grid rows are the dataset's hours inside the window for the
zones that have chosen sites. The result is a validated :class:`optim.market.Market`; the
same dataset, week, hours, sites, bid count and seed give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from gridbridge.bundle.options import bid_options_table
from gridbridge.errors import InputError
from gridbridge.hours import HourParseError, iso_week_window
from gridbridge.limits import CARBON_PRICE_EUR_PER_T
from gridbridge.market.availability import capacity_table
from gridbridge.market.bids import bids_table
from gridbridge.market.scale import MAX_SITES, select_sites
from gridbridge.market.source import read_dataset
from optim.market import CARBON_SIGNALS, Market, MarketConfig

#: EU ETS allowance price, 2023 average, rounded (EUR/t CO2eq): the default carbon price.
DEFAULT_CARBON_PRICE_EUR_PER_T = 85.0
MAX_BIDS = 100_000
#: Longest window in hours: a leap year (366 days).
MAX_HOURS = 8784


@dataclass(frozen=True, slots=True)
class MakerOptions:
    """What ``gridbridge market make`` builds.

    ``week`` is the ISO week whose Monday 00:00 UTC starts the window; ``bids`` the number of
    bids; ``seed`` seeds every draw; ``carbon_price_eur_per_t`` is EUR per tonne CO2eq;
    ``carbon_signal`` is ``direct`` or ``lifecycle``. ``sites`` (1 to 256 sites) picks or
    copies that many of the dataset's sites (see :mod:`gridbridge.market.scale`); ``hours``
    (1 to 8784 hours) sets the window's length. ``None`` keeps the dataset's sites and a
    one-week (168 h) window.
    """

    week: str = "2023-W27"
    bids: int = 500
    seed: int = 1
    carbon_price_eur_per_t: float = DEFAULT_CARBON_PRICE_EUR_PER_T
    carbon_signal: str = "direct"
    sites: int | None = None
    hours: int | None = None


def make_market(dataset: Path, options: MakerOptions) -> Market:
    """Build the window's market from the dataset folder (no network, no randomness but seeds).

    Raises :class:`InputError` naming the option and the fix for a bad option, a window the
    dataset's grid does not cover, or sites and a window too small for any drawn bid.
    """
    if not 0 <= options.bids <= MAX_BIDS:
        raise InputError(f"--bids must be between 0 and {MAX_BIDS}, got {options.bids}")
    if options.carbon_signal not in CARBON_SIGNALS:
        raise InputError(f"--signal must be one of {CARBON_SIGNALS}, got '{options.carbon_signal}'")
    if not CARBON_PRICE_EUR_PER_T.admits(options.carbon_price_eur_per_t):
        raise InputError(f"--carbon-price must be {CARBON_PRICE_EUR_PER_T.describe()}, "
                         f"not {options.carbon_price_eur_per_t:g}")
    if options.sites is not None and (
        isinstance(options.sites, bool) or not isinstance(options.sites, int)
        or not 1 <= options.sites <= MAX_SITES
    ):
        raise InputError(f"--sites must be between 1 and {MAX_SITES}, got {options.sites}; "
                         "pick a whole number of sites such as 16, or leave it out for all")
    if options.hours is not None and (
        isinstance(options.hours, bool) or not isinstance(options.hours, int)
        or not 1 <= options.hours <= MAX_HOURS
    ):
        raise InputError(f"--hours must be between 1 and {MAX_HOURS}, got {options.hours}; "
                         "pick the window's length in hours such as 336 (two weeks), or leave "
                         "it out for one week (168)")
    if options.hours is not None and options.hours < 2 and options.bids > 0:
        raise InputError(
            f"--hours {options.hours} is shorter than the shortest job (2 h); use --hours 2 or "
            "more (72 or more fits every drawn duration), or --bids 0"
        )
    try:
        start, end = iso_week_window(options.week)
    except HourParseError as exc:
        raise InputError(f"--week: {exc}; {exc.fix}") from None
    if options.hours is not None:
        end = start + timedelta(hours=options.hours)
    data = read_dataset(dataset)
    sites = data.sites if options.sites is None else select_sites(data.sites, options.sites)
    zones = sites["zone"].unique().to_list()
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
        if options.hours is None:
            raise InputError(
                f"--week {options.week}: the dataset's grid covers {have[0]} to {have[1]}, not "
                f"the whole week; pick a week inside the dataset's year"
            )
        span = data.grid["hour_utc"].min(), data.grid["hour_utc"].max()
        raise InputError(
            f"--week {options.week} --hours {options.hours}: the window {start} to {end} "
            f"(exclusive) is not all inside the dataset's grid ({span[0]} to {span[1]}); pick "
            f"an earlier --week or fewer --hours"
        )
    hours = config.hour_slots()
    try:
        bids = bids_table(options.bids, options.seed, f"{options.week}-", data.members,
                          data.gpus, sites, start, config.hours)
    except InputError as exc:
        if options.hours is None and options.sites is None:
            raise
        chosen = " ".join(f"--{name} {value}" for name, value in
                          (("sites", options.sites), ("hours", options.hours)) if value is not None)
        raise InputError(
            f"{chosen}: the chosen sites or window may be too small for the drawn jobs (8 to 512 "
            f"GPUs, 2 to 72 h); use --hours 72 or more, more --sites, or --bids 0 ({exc})"
        ) from None
    return Market(
        config=config,
        # read_dataset already types every required column the Market checks.
        members=data.members,
        gpus=data.gpus,
        sites=sites,
        capacity=capacity_table(sites, data.gpus, hours, options.seed),
        grid=grid,
        bids=bids,
        bid_options=bid_options_table(bids),
    )

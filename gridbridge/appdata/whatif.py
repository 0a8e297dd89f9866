"""What-ifs computed in the app with the clearing core: a round re-cleared at a chosen carbon
price and window, and the cost–carbon trade-off curve (one solve per carbon price).

Nothing here is stored: the exchange's rounds and a bundle's clearing files stay as they
are. Times in seconds (wall), carbon prices in EUR per tonne CO2eq, money in EUR.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import polars as pl

from gridbridge.appdata.model import CAPACITY_SCHEMA, REJECTED_SCHEMA, RoundResult
from gridbridge.appdata.window import restrict_window
from gridbridge.errors import InputError
from gridbridge.limits import parse_carbon_prices
from optim.clearing import clear
from optim.frontier import frontier
from optim.market import Market
from optim.options import SolveOptions

__all__ = ["own_bid_ids", "parse_prices", "sweep", "what_if"]

Progress = Callable[[str], None]


def own_bid_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """``bid_id`` as the member's own id: an exchange round's bundle names bids
    ``<member>:<bid_id>`` (ids are unique per member only); other ids are kept."""
    prefix = pl.col("member") + ":"
    return frame.with_columns(
        bid_id=pl.when(pl.col("bid_id").str.starts_with(prefix))
        .then(pl.col("bid_id").str.slice(pl.col("member").str.len_chars() + 1))
        .otherwise(pl.col("bid_id")))


def _limit(time_limit_s: float) -> float:
    if not time_limit_s > 0:
        raise InputError("time limit: must be > 0 seconds — fix: e.g. 30")
    return float(time_limit_s)


def what_if(market: Market, carbon_price_eur_per_t: float, time_limit_s: float, *,
            window: tuple[datetime, datetime] | None = None,
            progress: Progress | None = None) -> RoundResult:
    """Clear ``market`` (limited to ``window`` ``[start, end)`` when given) at the carbon
    price, priced, within ``time_limit_s`` for the solve and again for pricing.

    Bids that no longer fit the window are rejected as ``outside_window``.
    Raises :class:`InputError` naming the field for a negative price or a bad window.
    """
    if not carbon_price_eur_per_t >= 0:
        raise InputError("carbon price: must be >= 0 EUR per tonne CO2eq — fix: e.g. 85")
    limit = _limit(time_limit_s)
    excluded = pl.DataFrame(schema={c: REJECTED_SCHEMA[c] for c in
                                    ("bid_id", "member", "reason", "detail")})
    if window is not None:
        market, excluded = restrict_window(market, *window)
    started = time.perf_counter()
    options = SolveOptions(time_limit_s=limit, pricing_time_limit_s=limit,
                           carbon_price_eur_per_t=carbon_price_eur_per_t)
    clearing = clear(market, options, progress)
    solve_s = time.perf_counter() - started
    members = market.bids.select("bid_id", "member")
    rejected = pl.concat([
        clearing.rejected.join(members, on="bid_id", how="left"),
        excluded.with_columns(lost_opportunity_eur=pl.lit(None, dtype=pl.Float64)),
    ], how="diagonal_relaxed").select(list(REJECTED_SCHEMA))
    return RoundResult(
        placements=own_bid_ids(clearing.placements), rejected=own_bid_ids(rejected),
        prices=clearing.prices, summary=clearing.summary(),
        capacity=market.capacity.select(list(CAPACITY_SCHEMA)), solve_s=solve_s,
        what_if=True)


def sweep(market: Market, carbon_prices_eur_per_t: Sequence[float], time_limit_s: float, *,
          window: tuple[datetime, datetime] | None = None,
          progress: Progress | None = None) -> pl.DataFrame:
    """The cost–carbon trade-off: :func:`optim.frontier.frontier`'s rows (one per carbon
    price and method: ``optimum`` and both baselines; EUR, kg CO2eq) for ``market``
    (limited to ``window`` when given), ``time_limit_s`` per solve. Prices come from
    :func:`parse_prices`; the core refuses negative ones."""
    if window is not None:
        market, _ = restrict_window(market, *window)
    return frontier(market, carbon_prices_eur_per_t, SolveOptions(time_limit_s=_limit(
        time_limit_s)), progress)


def parse_prices(text: str) -> list[float]:
    """``0, 100, 400`` -> ``[0.0, 100.0, 400.0]`` (EUR per tonne CO2eq); InputError naming
    the field otherwise."""
    return parse_carbon_prices(text, "carbon prices")

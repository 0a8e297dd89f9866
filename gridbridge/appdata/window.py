"""Markets for what-ifs: a round limited to a sub-window, and a round with draft bids added.

Both follow the exchange's gate closure (:mod:`gridbridge.exchange.snapshot`), so a what-if
sees a market the exchange itself could have cleared: a bid's deadline after the window end
is moved to the window end, and a bid whose shortest option then no longer fits between its
release (or the window start) and its deadline is left out, reported as ``outside_window``.
Windows are half-open ``[start, end)`` of UTC hours.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import datetime

import polars as pl

from gridbridge.bundle import format_gpu_options, validate_bundle
from gridbridge.bundle.writer import canonical_tables, config_toml
from gridbridge.errors import InputError
from gridbridge.exchange.contract import BidIn
from gridbridge.hours import format_hour
from optim.market import Market

__all__ = ["add_bids", "restrict_window"]

OUTSIDE = "outside_window"


def _clamped(bids: pl.DataFrame, options: pl.DataFrame, start: datetime,
             end: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(bids that fit with deadlines clamped to ``end``, the excluded ones with a detail)."""
    shortest = options.group_by("bid_id").agg(pl.col("duration_h").min().alias("_shortest"))
    utc = pl.Datetime("us", "UTC")
    clamped = bids.join(shortest, on="bid_id", how="left").with_columns(
        deadline_utc=pl.min_horizontal("deadline_utc", pl.lit(end, dtype=utc)),
        _earliest=pl.max_horizontal("release_utc", pl.lit(start, dtype=utc)))
    room = (pl.col("deadline_utc") - pl.col("_earliest")).dt.total_hours()
    fits = room >= pl.col("_shortest")
    excluded = clamped.filter(~fits).select(
        "bid_id", "member", pl.lit(OUTSIDE).alias("reason"),
        pl.format("its shortest option ({} h) does not fit in [{}, {}) of the window "
                  "[{}, {})", "_shortest", pl.col("_earliest").dt.strftime("%Y-%m-%dT%H:%MZ"),
                  pl.col("deadline_utc").dt.strftime("%Y-%m-%dT%H:%MZ"),
                  pl.lit(format_hour(start)), pl.lit(format_hour(end))).alias("detail"))
    return clamped.filter(fits).drop("_shortest", "_earliest"), excluded


def restrict_window(market: Market, start: datetime,
                    end: datetime) -> tuple[Market, pl.DataFrame]:
    """``market`` limited to ``[start, end)`` (UTC hours inside its own window).

    Returns the market and the bids left out (``bid_id``, ``member``, ``reason`` =
    ``outside_window``, ``detail``). Raises :class:`InputError` naming ``window`` when the
    window is empty or reaches outside the market's.
    """
    cfg = market.config
    if not start < end:
        raise InputError(f"window: start {format_hour(start)} is not before end "
                         f"{format_hour(end)} — fix: pick an end after the start")
    if start < cfg.window_start_utc or end > cfg.window_end_utc:
        raise InputError(f"window: [{format_hour(start)}, {format_hour(end)}) reaches outside "
                         f"the round's window [{format_hour(cfg.window_start_utc)}, "
                         f"{format_hour(cfg.window_end_utc)}) — fix: pick hours inside it")
    bids, excluded = _clamped(market.bids, market.bid_options, start, end)
    inside = pl.col("hour_utc").is_between(start, end, closed="left")
    narrowed = replace(
        market, config=replace(cfg, window_start_utc=start, window_end_utc=end),
        capacity=market.capacity.filter(inside), grid=market.grid.filter(inside), bids=bids,
        bid_options=market.bid_options.filter(pl.col("bid_id").is_in(bids["bid_id"].implode())))
    return narrowed, excluded


def add_bids(market: Market, drafts: list[tuple[str, BidIn]]) -> Market:
    """``market`` with the draft bids ``(member, bid)`` added, validated as a bundle is.

    A draft's deadline after the window end is moved to the window end (the exchange does
    the same at gate closure). Raises :class:`~gridbridge.errors.BundleError` naming
    bids.csv's row, field and fix for a draft the bundle's rules refuse (an unknown member or
    GPU type, a bid id already used, a job that does not fit in the window...).
    """
    if not drafts:
        return market
    tables = canonical_tables(market)
    end = market.config.window_end_utc
    rows = pl.DataFrame([{
        "bid_id": bid.bid_id, "member": member,
        "gpu_options": format_gpu_options([(o.gpu_type, o.hours) for o in bid.options]),
        "gpus": bid.gpus, "release_utc": bid.release_utc,
        "deadline_utc": min(bid.deadline_utc, end), "value_eur": bid.value_eur,
        "allowed_jurisdictions": ";".join(bid.allowed_jurisdictions),
    } for member, bid in drafts], schema=tables["bids"].select(
        "bid_id", "member", "gpu_options", "gpus", "release_utc", "deadline_utc", "value_eur",
        "allowed_jurisdictions").schema)
    tables["bids"] = pl.concat([tables["bids"], rows], how="diagonal_relaxed")
    config = tomllib.loads(config_toml(market.config))
    added, _warnings = validate_bundle(tables, config, bundle="with your draft bids")
    return added

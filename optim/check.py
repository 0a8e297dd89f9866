"""An independent check of one clearing: is it feasible, and are its figures true?

:func:`check_clearing` takes a :class:`~optim.market.Market` and what a clearing reported
(``placements``, ``rejected`` and optionally ``summary.json`` as a dict) and recomputes every
figure from the market tables alone, with polars joins over the placements exploded into their
hours. It shares no code with the solver (it imports only :mod:`optim.market` and
:mod:`optim.errors`), so a bug in candidate enumeration or result extraction cannot hide
itself here.

Rules checked, each violation giving one problem line that names the bid, site and hour:

1. every placed bid exists and is placed once; every rejected bid exists and is rejected once
   (with a reason); no bid is both; every bid is one or the other;
2. the GPU type is one of the bid's options and ``end - start`` is exactly that option's
   duration; start and end are on the hour; ``gpus`` is the bid's ``gpus``;
3. ``release_utc <= start``, ``end <= deadline_utc``, and ``[start, end)`` lies inside the
   market window;
4. the site exists and its jurisdiction is in the bid's ``allowed_jurisdictions`` (``*`` =
   anywhere);
5. for every (site, GPU type, hour) the placed GPUs fit ``gpus_available`` (an hour without a
   capacity row offers 0 GPUs);
6. each placement's ``energy_kwh``, ``emissions_kg``, ``energy_cost_eur`` (and ``ask_eur``,
   ``carbon_fee_eur``, ``value_eur`` when those columns are there) match the recomputation;
7. the summary's totals match the recomputed totals (``objective_eur`` equals the welfare,
   ``bound_eur`` is not below it);
8. total emissions respect the summary's ``emissions_cap_kg`` when it is not null.
9. with prices (prices.csv), every (site, GPU type, hour) of capacity has one finite price
   >= 0, and each placement's ``capacity_eur``, ``payment_eur`` (never above its value) and
   ``uplift_eur`` follow from them.

Units and signs (DESIGN.md glossary): energy in kWh (facility energy, IT x PUE), emissions in
kg CO2eq of the market's ``carbon_signal``, money in EUR. Placement figures are costs of the
placement, so positive numbers; ``value_eur`` is what the bidder would pay (positive);
``surplus_eur = value - energy cost - asks`` and ``welfare_eur = surplus - carbon fee`` may be
negative. ``carbon_fee_eur = carbon price (EUR/t) x emissions_kg / 1000``.

Tolerances (``a`` reported, ``b`` recomputed):

* per placement, physical quantities (kWh, kg): ``|a - b| <= 1e-6 * max(1, |a|, |b|) + 1e-6``
  (:func:`close`); money (EUR): the same plus 0.005 EUR absolute, because ``placements.csv``
  may round money to the cent (:func:`close_money`);
* summary totals, physical quantities (GPU-hours, work hours, kWh, kg, kg per hour):
  ``|a - b| <= 1e-6 * max(|a|, |b|) + 1e-3``; money: ``|a - b| <= max(0.01 * max(1, n), 1e-6 *
  max(|a|, |b|))`` with ``n`` the number of placements (one cent of rounding per placement);
  ``accepted`` and ``rejected`` counts must be exact;
* the emissions cap: total emissions ``<= cap + 1e-6 * max(1, |cap|)``.

The list of problems is capped at :data:`MAX_PROBLEMS` lines plus one line "… and N more".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from optim.errors import CheckFailedError
from optim.market import UTC_HOUR, Market

__all__ = [
    "MAX_PROBLEMS",
    "TOTAL_KEYS",
    "CheckReport",
    "check_clearing",
    "close",
    "close_money",
]

#: The recomputed totals, in the order of ``summary.json``'s figures. ``accepted`` and
#: ``rejected`` are counts of rows; ``gpu_hours`` and ``work_h`` are GPU-hours; energy in kWh,
#: emissions in kg CO2eq, money in EUR; ``kg_per_*`` in kg CO2eq per hour of work / GPU-hour.
TOTAL_KEYS: tuple[str, ...] = (
    "accepted",
    "rejected",
    "gpu_hours",
    "work_h",
    "energy_kwh",
    "emissions_kg",
    "energy_cost_eur",
    "ask_eur",
    "carbon_fee_eur",
    "value_eur",
    "surplus_eur",
    "welfare_eur",
    "kg_per_work_h",
    "kg_per_gpu_hour",
)

#: Totals that are counts (compared exactly) and money (compared to the cent).
_COUNT_KEYS = frozenset({"accepted", "rejected"})
_MONEY_KEYS = frozenset(
    {"energy_cost_eur", "ask_eur", "carbon_fee_eur", "value_eur", "surplus_eur", "welfare_eur"}
)

#: At most this many problem lines are listed; the rest are counted in one closing line.
MAX_PROBLEMS = 50

REL_TOL = 1e-6
ABS_TOL = 1e-6
#: placements.csv may round money to the cent, so half a cent either way is not an error.
MONEY_ABS_TOL = 0.005
SUMMARY_ABS_TOL = 1e-3
#: Per placement, summary money may carry one cent of rounding.
SUMMARY_MONEY_TOL_PER_PLACEMENT = 0.01
#: A placement longer than this (hours) is not exploded hour by hour: it cannot be valid
#: (rule 2 or 3 reports it) and exploding it would only cost memory.
MAX_EXPLODED_HOURS = 24 * 366
#: At most this many bids are named in one capacity problem.
_MAX_NAMED_BIDS = 5

_PLACEMENT_KEYS = ("bid_id", "site_id", "gpu_type", "start_utc", "end_utc", "gpus")
_PLACEMENT_FIGURES = ("energy_kwh", "emissions_kg", "energy_cost_eur")
_OPTIONAL_FIGURES = ("ask_eur", "carbon_fee_eur", "value_eur")
_HOUR_US = 3_600_000_000  # one hour in microseconds, the unit of UTC_HOUR


def close(a: float, b: float) -> bool:
    """Whether physical quantities ``a`` and ``b`` agree: 1e-6 relative plus 1e-6 absolute."""
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b)) + ABS_TOL


def close_money(a: float, b: float) -> bool:
    """Whether EUR amounts ``a`` and ``b`` agree as :func:`close`, plus half a cent."""
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b)) + ABS_TOL + MONEY_ABS_TOL


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :func:`check_clearing` found.

    ``problems`` holds one line per violated rule instance (at most :data:`MAX_PROBLEMS`
    plus one "… and N more" line); ``totals`` holds the recomputed totals under
    :data:`TOTAL_KEYS` (units as there; NaN when the inputs lacked a required column).
    """

    problems: tuple[str, ...]
    totals: dict[str, float]

    @property
    def ok(self) -> bool:
        """True when the clearing passed every check."""
        return not self.problems

    def raise_if_failed(self) -> None:
        """Raise :class:`~optim.errors.CheckFailedError` listing the problems, if any."""
        if self.problems:
            lines = "\n".join(f"- {p}" for p in self.problems)
            raise CheckFailedError(
                f"the clearing fails its independent check:\n{lines}\n"
                "fix the clearing (or the solver that produced it) and check it again"
            )


def check_clearing(
    market: Market,
    placements: pl.DataFrame,
    rejected: pl.DataFrame,
    summary: Mapping[str, object] | None = None,
    prices: pl.DataFrame | None = None,
) -> CheckReport:
    """Check one clearing of ``market`` from scratch (rules and tolerances: module docstring).

    ``placements`` needs ``bid_id``, ``site_id``, ``gpu_type``, ``start_utc``, ``end_utc``
    (UTC, end exclusive), ``gpus``, ``energy_kwh``, ``emissions_kg`` and ``energy_cost_eur``;
    ``ask_eur``, ``carbon_fee_eur`` and ``value_eur`` are checked when present, other columns
    are ignored. ``rejected`` needs ``bid_id`` (and should have ``reason``). ``summary`` is
    ``summary.json`` as a dict; its ``carbon_price_eur_per_t``, when present, is the carbon
    price of the fees (a clearing may be run at another price than the bundle's).
    ``prices`` (prices.csv: ``site_id``, ``gpu_type``, ``hour_utc``,
    ``capacity_price_eur_per_gpu_hour``), when given, is checked (one finite price >= 0 per
    (site, GPU type, hour) of capacity) and the placements' ``capacity_eur``, ``payment_eur``
    and ``uplift_eur`` are recomputed from it: capacity = Σ over the GPU-hours of the price;
    payment = min(value, energy cost + carbon fee + asks + capacity); uplift = the rest.
    """
    problems: list[str] = []
    carbon_price = _carbon_price(market, summary, problems)
    place_all = _normalise_placements(placements, problems)
    rej_all = _normalise_rejected(rejected, problems)
    if place_all is None or rej_all is None:
        # Without the required columns nothing can be recomputed; say so and stop.
        return CheckReport(_capped(problems), dict.fromkeys(TOTAL_KEYS, math.nan))

    # Rows without their keys are reported once and left out of every later check.
    place = _drop_incomplete(place_all, problems)
    bids = _bid_facts(market)

    problems += _check_membership(place, rej_all, bids)
    option_problems, bad_type_rows = _check_options(place, bids, market)
    problems += option_problems
    problems += _check_times(place, bids, market)
    problems += _check_sites(place, bids, market)

    hourly, hourly_problems = _explode_hours(place, market)
    problems += hourly_problems
    problems += _check_capacity(hourly)
    figures = _recompute(place, hourly, bids, market, carbon_price)
    problems += _check_figures(place, figures, bad_type_rows)

    if prices is not None:
        problems += _check_payments(place, hourly, figures, prices, market)

    totals = _totals(place_all.height, rej_all.height, figures)
    if summary is not None:
        problems += _check_summary(summary, totals, place_all.height)
    return CheckReport(_capped(problems), totals)


# --- inputs -----------------------------------------------------------------------------


def _carbon_price(
    market: Market, summary: Mapping[str, object] | None, problems: list[str]
) -> float:
    """The carbon price (EUR/t) of the clearing: the summary's if it says, else the market's."""
    default = float(market.config.carbon_price_eur_per_t)
    if summary is None or summary.get("carbon_price_eur_per_t") is None:
        return default
    value = _number(summary["carbon_price_eur_per_t"])
    if value is None:
        problems.append(
            f"summary carbon_price_eur_per_t is {summary['carbon_price_eur_per_t']!r}, not a "
            f"number; the market's {_fmt(default)} EUR/t is used instead"
        )
        return default
    return value


def _utc(frame: pl.DataFrame, column: str) -> pl.Expr | None:
    """``column`` as UTC_HOUR: naive times are read as UTC, strings parsed as ISO 8601."""
    dtype = frame.schema[column]
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        col = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else (
            col.dt.convert_time_zone("UTC")
        )
        return col.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype == pl.String:
        # Unparseable text becomes null and is reported as a missing time.
        return col.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return None


def _normalise_placements(placements: pl.DataFrame, problems: list[str]) -> pl.DataFrame | None:
    """``placements`` with typed columns and a ``_row`` index, or None if columns are missing."""
    missing = [c for c in (*_PLACEMENT_KEYS, *_PLACEMENT_FIGURES) if c not in placements.columns]
    if missing:
        problems.append(
            f"placements lack column(s) {', '.join(missing)}; a clearing's placements need "
            f"{', '.join((*_PLACEMENT_KEYS, *_PLACEMENT_FIGURES))}"
        )
        return None
    casts: list[pl.Expr] = [
        pl.col(c).cast(pl.String, strict=False) for c in ("bid_id", "site_id", "gpu_type")
    ]
    for column in ("start_utc", "end_utc"):
        expr = _utc(placements, column)
        if expr is None:
            problems.append(
                f"placements.{column} is {placements.schema[column]}, not a UTC time"
            )
            return None
        casts.append(expr.alias(column))
    casts.append(pl.col("gpus").cast(pl.Int64, strict=False))
    casts += [
        pl.col(c).cast(pl.Float64, strict=False)
        for c in (*_PLACEMENT_FIGURES, *_OPTIONAL_FIGURES)
        if c in placements.columns
    ]
    return placements.with_columns(casts).with_row_index("_row")


def _normalise_rejected(rejected: pl.DataFrame, problems: list[str]) -> pl.DataFrame | None:
    """``rejected`` with string ``bid_id`` and ``reason``, or None without ``bid_id``."""
    if "bid_id" not in rejected.columns:
        problems.append("rejected lacks column bid_id; a clearing's rejected need bid_id, reason")
        return None
    frame = rejected.with_columns(pl.col("bid_id").cast(pl.String, strict=False))
    if "reason" in frame.columns:
        return frame.with_columns(pl.col("reason").cast(pl.String, strict=False))
    if frame.height:
        problems.append("rejected lacks column reason; every rejection must say why")
    return frame.with_columns(pl.lit("-", dtype=pl.String).alias("reason"))


def _drop_incomplete(place: pl.DataFrame, problems: list[str]) -> pl.DataFrame:
    """``place`` without rows that lack a key field, reporting each such row."""
    incomplete = place.filter(pl.any_horizontal(pl.col(_PLACEMENT_KEYS).is_null()))
    for row in incomplete.iter_rows(named=True):
        lacking = ", ".join(c for c in _PLACEMENT_KEYS if row[c] is None)
        problems.append(
            f"placement row {row['_row'] + 1} (bid {row['bid_id']}) has no valid {lacking}"
        )
    return place.filter(pl.all_horizontal(pl.col(_PLACEMENT_KEYS).is_not_null()))


def _bid_facts(market: Market) -> pl.DataFrame:
    """One row per bid: its terms under ``bid_*`` names, allowed list and ``work_h``.

    ``work_h`` = gpus x the shortest duration among all the bid's options (GPU-hours of
    work, so a slow GPU type is not credited with more work).
    """
    shortest = market.bid_options.group_by("bid_id").agg(
        pl.col("duration_h").min().alias("shortest_h")
    )
    return (
        market.bids.select(
            "bid_id",
            pl.col("gpus").alias("bid_gpus"),
            "gpu_options",
            "release_utc",
            "deadline_utc",
            pl.col("value_eur").alias("bid_value_eur"),
            "allowed_jurisdictions",
            pl.col("allowed_jurisdictions")
            .str.split(";")
            .list.eval(pl.element().str.strip_chars())
            .alias("allowed"),
        )
        .join(shortest, on="bid_id", how="left")
        .with_columns(
            (pl.col("bid_gpus") * pl.col("shortest_h").fill_null(0)).cast(pl.Float64)
            .alias("work_h")
        )
    )


# --- rules 1-4: one placement at a time --------------------------------------------------


def _check_membership(
    place: pl.DataFrame, rejected: pl.DataFrame, bids: pl.DataFrame
) -> list[str]:
    """Rule 1: each bid is placed exactly once or rejected exactly once, never both."""
    out: list[str] = []
    known = bids.select("bid_id")
    for row in place.join(known, on="bid_id", how="anti").iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} is placed (site {row['site_id']}, starting "
            f"{_iso(row['start_utc'])}) but is not in the market's bids"
        )
    placed_twice = (
        place.group_by("bid_id")
        .agg(pl.len().alias("n"), pl.col("site_id").sort().alias("sites"))
        .filter(pl.col("n") > 1)
        .sort("bid_id")
    )
    for row in placed_twice.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} is placed {row['n']} times (sites {', '.join(row['sites'])}); "
            "a bid runs once or not at all"
        )
    nameless = rejected.filter(pl.col("bid_id").is_null()).height
    if nameless:
        out.append(f"{nameless} rejected row(s) have no bid_id")
    rej = rejected.filter(pl.col("bid_id").is_not_null())
    for row in rej.join(known, on="bid_id", how="anti").unique("bid_id").sort("bid_id").rows():
        out.append(f"rejected bid {row[0]} is not in the market's bids")
    rejected_twice = (
        rej.group_by("bid_id").agg(pl.len().alias("n")).filter(pl.col("n") > 1).sort("bid_id")
    )
    for bid_id, n in rejected_twice.select("bid_id", "n").rows():
        out.append(f"bid {bid_id} is rejected {n} times; list each rejected bid once")
    no_reason = rej.filter(
        pl.col("reason").is_null() | (pl.col("reason").str.strip_chars() == "")
    ).sort("bid_id")
    for (bid_id,) in no_reason.select("bid_id").rows():
        out.append(f"rejected bid {bid_id} has no reason")
    both = (
        place.select("bid_id", "site_id")
        .unique("bid_id", keep="first", maintain_order=True)
        .join(rej.select("bid_id", "reason").unique("bid_id", keep="first"), on="bid_id")
        .sort("bid_id")
    )
    for bid_id, site_id, reason in both.rows():
        out.append(
            f"bid {bid_id} is both placed (site {site_id}) and rejected (reason '{reason}')"
        )
    neither = (
        bids.select("bid_id")
        .join(place.select("bid_id"), on="bid_id", how="anti")
        .join(rej.select("bid_id"), on="bid_id", how="anti")
        .sort("bid_id")
    )
    for (bid_id,) in neither.rows():
        out.append(f"bid {bid_id} is neither placed nor rejected; every bid needs an outcome")
    return out


def _check_options(
    place: pl.DataFrame, bids: pl.DataFrame, market: Market
) -> tuple[list[str], pl.DataFrame]:
    """Rule 2: GPU type and duration of one option, whole hours, the bid's GPU count.

    Also returns the rows whose GPU type is not an option of their bid, so that a missing
    ``it_kw`` for that type is not reported a second time.
    """
    out: list[str] = []
    frame = (
        place.join(bids, on="bid_id", how="inner")
        .join(market.bid_options, on=["bid_id", "gpu_type"], how="left")
        .with_columns(_ran_hours().alias("ran_h"))
        .sort("_row")
    )
    bad_type = frame.filter(pl.col("duration_h").is_null())
    for row in bad_type.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} is placed on {row['gpu_type']} at site {row['site_id']} "
            f"(starting {_iso(row['start_utc'])}), which is not one of its options "
            f"'{row['gpu_options']}'"
        )
    wrong_length = frame.filter(
        pl.col("duration_h").is_not_null() & (pl.col("ran_h") != pl.col("duration_h"))
    )
    for row in wrong_length.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} on {row['gpu_type']} at site {row['site_id']} runs "
            f"{_fmt(row['ran_h'])} h ({_span(row)}) but its {row['gpu_type']} option takes "
            f"{row['duration_h']} h"
        )
    for column in ("start_utc", "end_utc"):
        off_hour = place.filter(pl.col(column) != pl.col(column).dt.truncate("1h")).sort("_row")
        for row in off_hour.iter_rows(named=True):
            out.append(
                f"bid {row['bid_id']} at site {row['site_id']}: {column} "
                f"{_iso(row[column])} is not on the hour"
            )
    wrong_gpus = frame.filter(pl.col("gpus") != pl.col("bid_gpus"))
    for row in wrong_gpus.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} is placed with {row['gpus']} GPUs at site {row['site_id']} "
            f"({_span(row)}) but it bids for {row['bid_gpus']} GPUs"
        )
    return out, bad_type.select("_row")


def _check_times(place: pl.DataFrame, bids: pl.DataFrame, market: Market) -> list[str]:
    """Rule 3: inside the bid's [release, deadline) and the market's window."""
    out: list[str] = []
    window_start = market.config.window_start_utc
    window_end = market.config.window_end_utc
    frame = place.join(bids, on="bid_id", how="left").sort("_row")
    early = frame.filter(pl.col("start_utc") < pl.col("release_utc"))
    for row in early.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} at site {row['site_id']} starts at {_iso(row['start_utc'])}, "
            f"before its release at {_iso(row['release_utc'])}"
        )
    late = frame.filter(pl.col("end_utc") > pl.col("deadline_utc"))
    for row in late.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} at site {row['site_id']} ends at {_iso(row['end_utc'])} "
            f"(exclusive), after its deadline {_iso(row['deadline_utc'])}"
        )
    before = frame.filter(pl.col("start_utc") < pl.lit(window_start, dtype=UTC_HOUR))
    for row in before.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} at site {row['site_id']} starts at {_iso(row['start_utc'])}, "
            f"before the market window opens at {_iso(window_start)}"
        )
    after = frame.filter(pl.col("end_utc") > pl.lit(window_end, dtype=UTC_HOUR))
    for row in after.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} at site {row['site_id']} ends at {_iso(row['end_utc'])} "
            f"(exclusive), after the market window closes at {_iso(window_end)}"
        )
    return out


def _check_sites(place: pl.DataFrame, bids: pl.DataFrame, market: Market) -> list[str]:
    """Rule 4: the site exists and the bid allows its jurisdiction."""
    out: list[str] = []
    frame = place.join(market.sites.select("site_id", "jurisdiction"), on="site_id", how="left")
    for row in frame.filter(pl.col("jurisdiction").is_null()).sort("_row").iter_rows(named=True):
        out.append(f"bid {row['bid_id']} is placed at unknown site {row['site_id']}")
    outside = (
        frame.filter(pl.col("jurisdiction").is_not_null())
        .join(bids, on="bid_id", how="inner")
        .filter(
            ~pl.col("allowed").list.contains("*")
            & ~pl.col("allowed").list.contains(pl.col("jurisdiction"))
        )
        .sort("_row")
    )
    for row in outside.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} is placed at site {row['site_id']} in jurisdiction "
            f"{row['jurisdiction']}, outside its allowed jurisdictions "
            f"'{row['allowed_jurisdictions']}'"
        )
    return out


# --- rules 5-6: hour by hour -------------------------------------------------------------


def _ran_hours() -> pl.Expr:
    """``end_utc - start_utc`` in hours (a float: off-hour times give fractions)."""
    return (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds() / _HOUR_US


def _explode_hours(place: pl.DataFrame, market: Market) -> tuple[pl.DataFrame, list[str]]:
    """One row per (placement, hour it runs), with the market's figures for that hour.

    Only placements with whole-hour times and ``0 < duration <= MAX_EXPLODED_HOURS`` are
    exploded; rule 2 already reports the others (wrong duration or not on the hour). Market
    figures that have no row (unknown site or GPU type, no grid or capacity row) are null.
    """
    out: list[str] = []
    ran_us = (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds()
    whole = (
        (pl.col("start_utc") == pl.col("start_utc").dt.truncate("1h"))
        & (pl.col("end_utc") == pl.col("end_utc").dt.truncate("1h"))
        & (ran_us > 0)
    )
    candidates = place.filter(whole).with_columns((ran_us // _HOUR_US).alias("_hours"))
    too_long = candidates.filter(pl.col("_hours") > MAX_EXPLODED_HOURS).sort("_row")
    for row in too_long.iter_rows(named=True):
        out.append(
            f"bid {row['bid_id']} at site {row['site_id']} runs {row['_hours']} h "
            f"({_span(row)}); not checked hour by hour"
        )
    signal = f"carbon_{market.config.carbon_signal}_g_per_kwh"
    hourly = (
        candidates.filter(pl.col("_hours") <= MAX_EXPLODED_HOURS)
        .select("_row", "bid_id", "site_id", "gpu_type", "gpus", "start_utc", "_hours")
        .with_columns(pl.int_ranges(0, pl.col("_hours")).alias("_k"))
        .explode("_k")
        .with_columns(
            (pl.col("start_utc") + pl.duration(hours=pl.col("_k"))).alias("hour_utc")
        )
        .drop("_k", "start_utc", "_hours")
        .join(
            market.sites.select("site_id", "zone", "pue", "tariff_adder_eur_per_mwh"),
            on="site_id",
            how="left",
        )
        .join(market.gpus.select("gpu_type", "it_kw"), on="gpu_type", how="left")
        .join(
            market.grid.select(
                "zone", "hour_utc", pl.col(signal).alias("g_per_kwh"), "price_eur_per_mwh"
            ),
            on=["zone", "hour_utc"],
            how="left",
        )
        .join(
            market.capacity.select(
                "site_id", "gpu_type", "hour_utc", "gpus_available", "ask_eur_per_gpu_hour"
            ),
            on=["site_id", "gpu_type", "hour_utc"],
            how="left",
        )
        .with_columns(
            # DESIGN.md: gpus x it_kw x pue kWh per hour; kg = kWh x g/kWh / 1000;
            # EUR = kWh x (zone price + site adder) EUR/MWh / 1000.
            (pl.col("gpus") * pl.col("it_kw") * pl.col("pue")).alias("kwh")
        )
        .with_columns(
            (pl.col("kwh") * pl.col("g_per_kwh") / 1000.0).alias("kg"),
            (
                pl.col("kwh")
                * (pl.col("price_eur_per_mwh") + pl.col("tariff_adder_eur_per_mwh"))
                / 1000.0
            ).alias("cost_eur"),
            (pl.col("gpus") * pl.col("ask_eur_per_gpu_hour")).alias("ask_eur"),
        )
    )
    return hourly, out


def _check_capacity(hourly: pl.DataFrame) -> list[str]:
    """Rule 5: placed GPUs per (site, GPU type, hour) fit ``gpus_available`` (no row = 0)."""
    used = (
        hourly.group_by("site_id", "gpu_type", "hour_utc")
        .agg(
            pl.col("gpus").sum().alias("used"),
            pl.col("gpus_available").first().fill_null(0).alias("available"),
            pl.col("bid_id").unique().sort().alias("bids"),
        )
        .filter(pl.col("used") > pl.col("available"))
        .sort("site_id", "gpu_type", "hour_utc")
    )
    out: list[str] = []
    for row in used.iter_rows(named=True):
        named = row["bids"][:_MAX_NAMED_BIDS]
        more = len(row["bids"]) - len(named)
        listed = ", ".join(named) + (f" and {more} more" if more else "")
        out.append(
            f"site {row['site_id']}, {row['gpu_type']}, hour {_iso(row['hour_utc'])}: "
            f"{row['used']} GPUs placed (bids {listed}) but only {row['available']} available"
        )
    return out


def _recompute(
    place: pl.DataFrame,
    hourly: pl.DataFrame,
    bids: pl.DataFrame,
    market: Market,
    carbon_price: float,
) -> pl.DataFrame:
    """Per placement row: the recomputed figures and whether each could be recomputed.

    Columns ``calc_*`` are the recomputed energy (kWh), emissions (kg), energy cost, ask,
    carbon fee and value (EUR), ``gpu_hours`` and ``work_h``; null parts count 0. Flags
    ``has_static`` (site and GPU type known), ``has_grid`` (every hour has a grid row),
    ``has_ask`` (every hour has a capacity row) and ``exploded`` say what can be compared;
    ``missing_grid_hour`` is the first in-window hour without a grid row.
    """
    start = market.config.window_start_utc
    end = market.config.window_end_utc
    in_window = (pl.col("hour_utc") >= pl.lit(start, dtype=UTC_HOUR)) & (
        pl.col("hour_utc") < pl.lit(end, dtype=UTC_HOUR)
    )
    no_grid = pl.col("g_per_kwh").is_null() | pl.col("price_eur_per_mwh").is_null()
    per_row = hourly.group_by("_row").agg(
        pl.col("kwh").sum().alias("calc_energy_kwh"),
        pl.col("kg").sum().alias("calc_emissions_kg"),
        pl.col("cost_eur").sum().alias("calc_energy_cost_eur"),
        pl.col("ask_eur").sum().alias("calc_ask_eur"),
        (pl.col("kwh").null_count() == 0).alias("has_static"),
        (no_grid.sum() == 0).alias("has_grid"),
        (pl.col("ask_eur").null_count() == 0).alias("has_ask"),
        pl.col("hour_utc").filter(no_grid & in_window).min().alias("missing_grid_hour"),
        pl.col("zone").first().alias("zone"),
        pl.lit(True).alias("exploded"),
    )
    return (
        place.select("_row", "bid_id", "gpus", "start_utc", "end_utc")
        .join(per_row, on="_row", how="left")
        .join(bids.select("bid_id", "bid_value_eur", "work_h"), on="bid_id", how="left")
        .with_columns(
            pl.col("^calc_.*$").fill_null(0.0),
            pl.col("exploded", "has_static", "has_grid", "has_ask").fill_null(False),
            pl.col("bid_value_eur").is_not_null().alias("known_bid"),
            pl.col("bid_value_eur").fill_null(0.0).alias("calc_value_eur"),
            pl.col("work_h").fill_null(0.0),
            (pl.col("gpus") * _ran_hours()).alias("gpu_hours"),
        )
        .with_columns(
            (carbon_price * pl.col("calc_emissions_kg") / 1000.0).alias("calc_carbon_fee_eur")
        )
        .drop("bid_id", "gpus", "start_utc", "end_utc")
    )


def _check_figures(
    place: pl.DataFrame, figures: pl.DataFrame, bad_type_rows: pl.DataFrame
) -> list[str]:
    """Rule 6: each placement's reported figures equal the recomputation (see tolerances)."""
    out: list[str] = []
    frame = place.join(figures, on="_row", how="left").sort("_row")

    # Figures that cannot be recomputed for a reason no other rule reports.
    for row in frame.filter(pl.col("missing_grid_hour").is_not_null()).iter_rows(named=True):
        out.append(
            f"no grid row for zone {row['zone']} at hour {_iso(row['missing_grid_hour'])} "
            f"(bid {row['bid_id']} at site {row['site_id']}); its figures cannot be checked"
        )
    unknown_type = frame.filter(
        pl.col("exploded") & ~pl.col("has_static") & pl.col("zone").is_not_null()
    ).join(bad_type_rows, on="_row", how="anti")
    for row in unknown_type.iter_rows(named=True):
        out.append(
            f"GPU type {row['gpu_type']} of bid {row['bid_id']} at site {row['site_id']} is "
            "not in the market's gpus table; its energy cannot be checked"
        )

    money = MONEY_ABS_TOL + ABS_TOL
    # (column, unit, comparable-when, absolute tolerance)
    checks: list[tuple[str, str, pl.Expr, float]] = [
        ("energy_kwh", "kWh", pl.col("exploded") & pl.col("has_static"), ABS_TOL),
        ("emissions_kg", "kg", pl.col("has_static") & pl.col("has_grid"), ABS_TOL),
        ("energy_cost_eur", "EUR", pl.col("has_static") & pl.col("has_grid"), money),
        ("ask_eur", "EUR", pl.col("exploded") & pl.col("has_ask"), money),
        ("carbon_fee_eur", "EUR", pl.col("has_static") & pl.col("has_grid"), money),
        ("value_eur", "EUR", pl.col("known_bid"), money),
    ]
    bad_rows: list[tuple[int, str]] = []
    for column, unit, comparable, abs_tol in checks:
        if column not in frame.columns:
            continue
        reported, calc = pl.col(column), pl.col(f"calc_{column}")
        scale = pl.max_horizontal(pl.lit(1.0), reported.abs(), calc.abs())
        wrong = frame.filter(
            comparable
            & (
                reported.is_null()
                | reported.is_nan()
                | ((reported - calc).abs() > REL_TOL * scale + abs_tol)
            )
        )
        for row in wrong.iter_rows(named=True):
            got = row[column]
            shown = "nothing" if got is None or math.isnan(got) else f"{_fmt(got)} {unit}"
            bad_rows.append(
                (
                    row["_row"],
                    f"bid {row['bid_id']} at site {row['site_id']} ({row['gpu_type']}, "
                    f"{_span(row)}): {column} reported {shown} but recomputes to "
                    f"{_fmt(row[f'calc_{column}'])} {unit}",
                )
            )
    # Placement order, then column order: all of one placement's mismatches together.
    out += [text for _, text in sorted(bad_rows, key=lambda item: item[0])]
    return out


def _check_payments(place: pl.DataFrame, hourly: pl.DataFrame, figures: pl.DataFrame,
                    prices: pl.DataFrame, market: Market) -> list[str]:
    """Rule 9: prices cover every capacity row, are finite and >= 0, and each placement's
    capacity charge, payment and uplift follow from them (EUR, money tolerance)."""
    out: list[str] = []
    column = "capacity_price_eur_per_gpu_hour"
    keys = ["site_id", "gpu_type", "hour_utc"]
    missing = [c for c in [*keys, column] if c not in prices.columns]
    if missing:
        return [f"prices lack column(s) {', '.join(missing)}"]
    table = prices.select(*keys, pl.col(column).cast(pl.Float64))
    bad = table.filter(pl.col(column).is_null() | ~pl.col(column).is_finite()
                       | (pl.col(column) < 0)).sort(keys)
    out += [f"capacity price of {r['site_id']}, {r['gpu_type']}, hour {_iso(r['hour_utc'])} is "
            f"{r[column]}: prices must be finite and >= 0 EUR per GPU-hour"
            for r in bad.head(_MAX_NAMED_BIDS).iter_rows(named=True)]
    absent = market.capacity.select(keys).join(table, on=keys, how="anti")
    if absent.height:
        r = absent.sort(keys).row(0, named=True)
        out.append(f"prices have no row for {absent.height} (site, GPU type, hour) of capacity, "
                   f"e.g. {r['site_id']}, {r['gpu_type']}, hour {_iso(r['hour_utc'])}")
    needed = ("capacity_eur", "payment_eur", "uplift_eur")
    if not all(c in place.columns for c in needed):
        return out
    capacity = (hourly.join(table, on=keys, how="left")
                .group_by("_row").agg((pl.col("gpus") * pl.col(column).fill_null(0.0)).sum()
                                      .alias("calc_capacity_eur")))
    frame = (place.join(figures, on="_row", how="left").join(capacity, on="_row", how="left")
             .with_columns(pl.col("calc_capacity_eur").fill_null(0.0))
             .with_columns((pl.col("calc_energy_cost_eur") + pl.col("calc_carbon_fee_eur")
                            + pl.col("calc_ask_eur") + pl.col("calc_capacity_eur"))
                           .alias("_charge"))
             .with_columns(pl.min_horizontal("_charge", "calc_value_eur")
                           .alias("calc_payment_eur"))
             .with_columns((pl.col("_charge") - pl.col("calc_payment_eur"))
                           .alias("calc_uplift_eur"))
             .filter(pl.col("has_static") & pl.col("has_grid") & pl.col("has_ask")
                     & pl.col("known_bid"))
             .sort("_row"))
    for name in needed:
        reported, calc = pl.col(name), pl.col(f"calc_{name}")
        scale = pl.max_horizontal(pl.lit(1.0), reported.abs(), calc.abs())
        wrong = frame.filter(reported.is_null() | reported.is_nan()
                             | ((reported - calc).abs() > REL_TOL * scale + MONEY_ABS_TOL
                                + ABS_TOL))
        out += [f"bid {r['bid_id']} at site {r['site_id']} ({r['gpu_type']}, {_span(r)}): "
                f"{name} reported {_fmt(r[name])} EUR but recomputes to "
                f"{_fmt(r[f'calc_{name}'])} EUR" for r in wrong.iter_rows(named=True)]
    over = frame.filter(pl.col("payment_eur") > pl.col("calc_value_eur") + MONEY_ABS_TOL)
    out += [f"bid {r['bid_id']} pays {_fmt(r['payment_eur'])} EUR, more than its value "
            f"{_fmt(r['calc_value_eur'])} EUR" for r in over.iter_rows(named=True)]
    return out


# --- rules 7-8: totals -------------------------------------------------------------------


def _totals(accepted: int, rejected: int, figures: pl.DataFrame) -> dict[str, float]:
    """The recomputed totals under TOTAL_KEYS (units there), from per-placement figures."""
    sums = figures.select(
        pl.col("gpu_hours").sum(),
        pl.col("work_h").sum(),
        pl.col("calc_energy_kwh").sum().alias("energy_kwh"),
        pl.col("calc_emissions_kg").sum().alias("emissions_kg"),
        pl.col("calc_energy_cost_eur").sum().alias("energy_cost_eur"),
        pl.col("calc_ask_eur").sum().alias("ask_eur"),
        pl.col("calc_carbon_fee_eur").sum().alias("carbon_fee_eur"),
        pl.col("calc_value_eur").sum().alias("value_eur"),
    ).row(0, named=True)
    totals: dict[str, float] = {"accepted": accepted, "rejected": rejected}
    totals.update({k: float(v or 0.0) for k, v in sums.items()})
    totals["surplus_eur"] = totals["value_eur"] - totals["energy_cost_eur"] - totals["ask_eur"]
    totals["welfare_eur"] = totals["surplus_eur"] - totals["carbon_fee_eur"]
    work, gpu_hours, kg = totals["work_h"], totals["gpu_hours"], totals["emissions_kg"]
    totals["kg_per_work_h"] = kg / work if work else 0.0
    totals["kg_per_gpu_hour"] = kg / gpu_hours if gpu_hours else 0.0
    return {k: totals[k] for k in TOTAL_KEYS}


def _check_summary(
    summary: Mapping[str, object], totals: dict[str, float], placements: int
) -> list[str]:
    """Rules 7 and 8: the summary's totals, objective, bound and emissions cap."""
    out: list[str] = []
    money_tol = SUMMARY_MONEY_TOL_PER_PLACEMENT * max(1, placements)

    def agree(key: str, reported: float, calc: float) -> bool:
        if key in _COUNT_KEYS:
            return reported == calc
        scale = max(abs(reported), abs(calc))
        if key in _MONEY_KEYS or key.endswith("_eur"):
            return abs(reported - calc) <= max(money_tol, REL_TOL * scale)
        return abs(reported - calc) <= REL_TOL * scale + SUMMARY_ABS_TOL

    for key in TOTAL_KEYS:
        if key not in summary:
            continue
        reported = _number(summary[key])
        if reported is None:
            out.append(
                f"summary {key} is {summary[key]!r}, not a number; the placements give "
                f"{_fmt(totals[key])}"
            )
        elif not agree(key, reported, totals[key]):
            out.append(
                f"summary {key} is {_fmt(reported)} but the placements give "
                f"{_fmt(totals[key])} (difference {_fmt(reported - totals[key])})"
            )
    welfare = totals["welfare_eur"]
    # A null objective or bound means no solver figure (e.g. nothing to solve): not checked.
    for key in ("objective_eur", "bound_eur"):
        value = summary.get(key)
        if value is None:
            continue
        reported = _number(value)
        if reported is None:
            out.append(f"summary {key} is {value!r}, not a number")
        elif key == "objective_eur" and not agree(key, reported, welfare):
            out.append(
                f"summary objective_eur is {_fmt(reported)} but the placements' welfare is "
                f"{_fmt(welfare)} EUR (difference {_fmt(reported - welfare)})"
            )
        elif key == "bound_eur" and reported < welfare - max(
            money_tol, REL_TOL * max(abs(reported), abs(welfare))
        ):
            out.append(
                f"summary bound_eur {_fmt(reported)} is below the placements' welfare "
                f"{_fmt(welfare)} EUR; a bound on a maximum cannot be under a feasible value"
            )
    cap_value = summary.get("emissions_cap_kg")
    if cap_value is not None:
        cap = _number(cap_value)
        if cap is None:
            out.append(f"summary emissions_cap_kg is {cap_value!r}, not a number or null")
        elif totals["emissions_kg"] > cap + REL_TOL * max(1.0, abs(cap)):
            out.append(
                f"total emissions {_fmt(totals['emissions_kg'])} kg exceed the emissions cap "
                f"{_fmt(cap)} kg by {_fmt(totals['emissions_kg'] - cap)} kg"
            )
    return out


# --- helpers -----------------------------------------------------------------------------


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None if it is not a real number (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso(moment: datetime | None) -> str:
    """``2023-07-03T14:00Z`` (seconds shown only when there are any)."""
    if moment is None:
        return "?"
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _span(row: Mapping[str, Any]) -> str:
    """A placement's ``[start, end)`` as ISO text."""
    return f"{_iso(row['start_utc'])} to {_iso(row['end_utc'])}"


def _fmt(value: float | None) -> str:
    """A number with enough digits to see a cent or a gram on realistic totals."""
    if value is None:
        return "null"
    return f"{value:.10g}"


def _capped(problems: Iterable[str]) -> tuple[str, ...]:
    """The first MAX_PROBLEMS problems, plus one line counting the rest."""
    listed = list(problems)
    if len(listed) <= MAX_PROBLEMS:
        return tuple(listed)
    more = len(listed) - MAX_PROBLEMS
    return (*listed[:MAX_PROBLEMS], f"… and {more} more")

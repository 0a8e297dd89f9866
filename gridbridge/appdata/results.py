"""The Market page's tables from one clearing's results: Gantt rows, utilisation by hour,
the price heatmap, the comparison with both baselines and the trade-off curve.

Units: times UTC, intervals ``[start, end)``; GPUs whole; utilisation a fraction (0.5 =
50 %); money EUR; emissions kg CO2eq (tonnes where a column says ``_t``); capacity prices
EUR per GPU-hour.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from gridbridge.appdata.model import RoundResult

__all__ = ["METHODS", "baseline_table", "chosen_point", "frontier_rows", "gantt_rows",
           "price_rows", "utilisation_by_hour"]

#: The clearing and its two baselines, in the order the comparison lists them.
METHODS = ("optimum", "carbon_blind_greedy", "carbon_aware_greedy")
#: Figures compared across methods (summary.json's keys).
FIGURES = ("welfare_eur", "surplus_eur", "emissions_kg", "kg_per_gpu_hour", "kg_per_work_h",
           "gpu_hours", "work_h", "accepted", "rejected")


def gantt_rows(placements: pl.DataFrame) -> pl.DataFrame:
    """One bar per placement: ``site_id``, ``lane`` (0, 1, ...: jobs that overlap in time
    on one site get different lanes, so no bar hides another), ``start_utc``, ``end_utc``,
    ``hours``, ``job`` (``member/bid_id``) and the placement's figures."""
    rows = placements.sort("site_id", "start_utc", "end_utc", "member", "bid_id")
    lanes: list[int] = []
    ends: dict[str, list[datetime]] = {}  # per site: the end of each lane's last job
    for site, start, end in rows.select("site_id", "start_utc", "end_utc").iter_rows():
        taken = ends.setdefault(site, [])
        lane = next((i for i, free_at in enumerate(taken) if free_at <= start), len(taken))
        if lane == len(taken):
            taken.append(end)
        else:
            taken[lane] = end
        lanes.append(lane)
    return rows.with_columns(
        lane=pl.Series(lanes, dtype=pl.Int64),
        hours=(pl.col("end_utc") - pl.col("start_utc")).dt.total_hours(),
        job=pl.format("{}/{}", "member", "bid_id"))


def utilisation_by_hour(result: RoundResult) -> pl.DataFrame:
    """Per GPU type and hour: ``gpus_used`` by placements, ``gpus_available`` in the round,
    ``utilisation`` = used / available (null where none was offered). Empty when the
    round's capacity is unknown."""
    schema: dict[str, pl.DataType] = {
        "gpu_type": pl.String(), "hour_utc": pl.Datetime("us", "UTC"), "gpus_used": pl.Int64(),
        "gpus_available": pl.Int64(), "utilisation": pl.Float64()}
    if result.capacity is None:
        return pl.DataFrame(schema=schema)
    used = result.placements.select(
        "gpu_type", "gpus",
        pl.datetime_ranges("start_utc", pl.col("end_utc") - pl.duration(hours=1), "1h",
                           closed="both").alias("hour_utc"),
    ).explode("hour_utc").drop_nulls("hour_utc").group_by("gpu_type", "hour_utc").agg(
        pl.col("gpus").sum().alias("gpus_used"))
    offered = result.capacity.group_by("gpu_type", "hour_utc").agg(
        pl.col("gpus_available").sum())
    return offered.join(used, on=["gpu_type", "hour_utc"], how="full", coalesce=True).select(
        "gpu_type", "hour_utc", pl.col("gpus_used").fill_null(0).cast(pl.Int64),
        pl.col("gpus_available").fill_null(0).cast(pl.Int64),
        pl.when(pl.col("gpus_available") > 0)
        .then(pl.col("gpus_used").fill_null(0) / pl.col("gpus_available"))
        .alias("utilisation"),
    ).sort("gpu_type", "hour_utc")


def price_rows(prices: pl.DataFrame) -> pl.DataFrame:
    """Capacity prices (EUR per GPU-hour) with ``pool`` = ``site · GPU type``."""
    return prices.with_columns(pool=pl.format("{} · {}", "site_id", "gpu_type")).sort(
        "site_id", "gpu_type", "hour_utc")


def baseline_table(summary: dict[str, object]) -> pl.DataFrame:
    """One row per method of :data:`METHODS` that the summary has: welfare and surplus
    (EUR), emissions (kg CO2eq), kg CO2eq per GPU-hour and per work-hour, GPU-hours,
    work-hours, bids accepted and rejected; all at the clearing's carbon price."""
    baselines = summary.get("baselines")
    found = {"optimum": summary, **(baselines if isinstance(baselines, dict) else {})}
    rows = [{"method": m, **{f: _number(found[m].get(f)) for f in FIGURES}}
            for m in METHODS if isinstance(found.get(m), dict)]
    return pl.DataFrame(rows, schema={"method": pl.String,
                                      **{f: pl.Float64 for f in FIGURES}}, orient="row")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def chosen_point(summary: dict[str, object]) -> dict[str, float | None]:
    """The clearing's point on the trade-off curve: carbon price (EUR/t), surplus (EUR),
    emissions (t CO2eq)."""
    emissions = _number(summary.get("emissions_kg"))
    return {"carbon_price_eur_per_t": _number(summary.get("carbon_price_eur_per_t")),
            "surplus_eur": _number(summary.get("surplus_eur")),
            "emissions_t": None if emissions is None else emissions / 1000.0}


def frontier_rows(frontier: pl.DataFrame) -> pl.DataFrame:
    """:func:`~gridbridge.appdata.whatif.sweep`'s rows with ``emissions_t`` (t CO2eq)."""
    return frontier.with_columns(emissions_t=pl.col("emissions_kg") / 1000.0).sort(
        "method", "carbon_price_eur_per_t")

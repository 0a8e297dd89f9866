"""The Alliance page's tables: the sites on a map, and free GPUs per pool and hour.

Units: intensity gCO2eq/kWh of the outlook's one signal; map radius in metres; colours are
``[r, g, b]`` 0-255, green for clean grids through red for dirty ones.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from gridbridge.appdata.model import Outlook

__all__ = ["CLEAN_G_PER_KWH", "DIRTY_G_PER_KWH", "current_hour", "map_rows", "pool_rows"]

#: Intensities at and below this are drawn fully green (gCO2eq/kWh; Quebec's hydro grid).
CLEAN_G_PER_KWH = 50.0
#: Intensities at and above this are drawn fully red (gCO2eq/kWh; a coal-heavy grid).
DIRTY_G_PER_KWH = 600.0
#: Radius of a site of one GPU (metres); it grows with the square root of its GPUs, so a
#: circle's area is proportional to the GPUs it pools.
RADIUS_PER_ROOT_GPU_M = 12_000.0


def current_hour(outlook: Outlook, now: datetime) -> datetime | None:
    """The hour to colour the map by: ``now``'s hour when the outlook has grid data for it,
    else the outlook's first hour with grid data (None when it has none)."""
    hours = outlook.grid["hour_utc"]
    if hours.is_empty():
        return None
    hour = now.replace(minute=0, second=0, microsecond=0)
    return hour if (hours == hour).any() else hours.min()  # type: ignore[return-value]


def map_rows(outlook: Outlook, hour: datetime | None) -> pl.DataFrame:
    """One row per site: :data:`~gridbridge.appdata.model.SITE_SCHEMA`'s columns plus
    ``carbon_g_per_kwh`` and ``price_eur_per_mwh`` of its zone at ``hour`` (null without
    data), ``radius_m`` and ``color`` (grey where the intensity is unknown)."""
    at = outlook.grid.filter(pl.col("hour_utc") == hour).select(
        "zone", "carbon_g_per_kwh", "price_eur_per_mwh")
    share = ((pl.col("carbon_g_per_kwh") - CLEAN_G_PER_KWH)
             / (DIRTY_G_PER_KWH - CLEAN_G_PER_KWH)).clip(0.0, 1.0)
    return outlook.sites.join(at, on="zone", how="left").with_columns(
        radius_m=(pl.col("pooled_gpus").cast(pl.Float64).sqrt() * RADIUS_PER_ROOT_GPU_M),
        color=pl.when(pl.col("carbon_g_per_kwh").is_null())
        .then(pl.lit([150, 150, 150]))
        .otherwise(pl.concat_list((share * 220).round().cast(pl.Int64),
                                  ((1 - share) * 180).round().cast(pl.Int64),
                                  pl.lit(60, dtype=pl.Int64))),
    ).sort("site_id")


def pool_rows(capacity: pl.DataFrame) -> pl.DataFrame:
    """Free GPUs per pool and hour, with ``pool`` = ``site · GPU type`` for a chart row."""
    return capacity.with_columns(pool=pl.format("{} · {}", "site_id", "gpu_type")).sort(
        "site_id", "gpu_type", "hour_utc")

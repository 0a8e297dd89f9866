"""A readable overview of a market bundle: sites, GPUs, grid over the window, bids by size.

All figures are computed from the validated :class:`optim.market.Market`; the CLI renders
them with rich (``gridbridge market summary DIR``) or as JSON (``--json``).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from optim.market import Market

#: Upper bounds of the gang-size buckets of the bids table (GPUs, inclusive).
SIZE_BUCKETS = (8, 16, 32, 64, 128, 256, 512)
SIZE_LABELS = ("1-8", "9-16", "17-32", "33-64", "65-128", "129-256", "257-512", ">512")


def _size_bucket(gpus: pl.Expr) -> pl.Expr:
    """The SIZE_LABELS bucket of a gang size, as an ordered Enum."""
    bucket: pl.Expr = pl.lit(SIZE_LABELS[-1])
    for upper, label in reversed(list(zip(SIZE_BUCKETS, SIZE_LABELS, strict=False))):
        bucket = pl.when(gpus <= upper).then(pl.lit(label)).otherwise(bucket)
    return bucket.cast(pl.Enum(SIZE_LABELS))


@dataclass(frozen=True, slots=True)
class MarketSummary:
    """Headline figures and the four overview tables.

    ``gpu_hours_offered`` is Σ gpus_available over the window (GPU-hours); ``work_h_demanded``
    is Σ over bids of gpus × shortest option duration (GPU-hours of work); ``value_eur`` is
    Σ bid value in EUR.
    """

    window: str
    hours: int
    carbon_price_eur_per_t: float
    carbon_signal: str
    n_members: int
    n_sites: int
    n_bids: int
    gpu_hours_offered: int
    work_h_demanded: int
    value_eur: float
    sites: pl.DataFrame
    gpus: pl.DataFrame
    zones: pl.DataFrame
    bids_by_size: pl.DataFrame

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (tables as lists of records)."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.to_dicts() if isinstance(value, pl.DataFrame) else value
        return out


def summarize(market: Market) -> MarketSummary:
    """Compute the overview of ``market``."""
    cfg = market.config
    cap = market.capacity.filter(
        (pl.col("hour_utc") >= cfg.window_start_utc) & (pl.col("hour_utc") < cfg.window_end_utc)
    )
    sites = (
        cap.group_by("site_id", "gpu_type")
        .agg(
            pl.col("gpus_available").max().alias("gpus_max"),
            pl.col("gpus_available").min().alias("gpus_min"),
            pl.col("gpus_available").sum().alias("gpu_hours"),
            pl.col("ask_eur_per_gpu_hour").mean().round(4).alias("ask_eur_per_gpu_hour"),
        )
        .join(market.sites.select("site_id", "member", "zone"), on="site_id")
        .select("site_id", "member", "zone", "gpu_type", "gpus_max", "gpus_min", "gpu_hours",
                "ask_eur_per_gpu_hour")
        .sort("site_id", "gpu_type")
    )
    gpus = (
        sites.group_by("gpu_type")
        .agg(pl.len().alias("sites"), pl.col("gpus_max").sum().alias("gpus_max"),
             pl.col("gpu_hours").sum().alias("gpu_hours"))
        .join(market.gpus.select("gpu_type", "it_kw"), on="gpu_type")
        .sort("gpu_type")
    )
    intensity = f"carbon_{cfg.carbon_signal}_g_per_kwh"
    zones = (
        market.grid.filter(
            (pl.col("hour_utc") >= cfg.window_start_utc)
            & (pl.col("hour_utc") < cfg.window_end_utc)
            & pl.col("zone").is_in(market.sites["zone"].unique().to_list())
        )
        .group_by("zone")
        .agg(
            pl.col(intensity).mean().round(1).alias(f"mean_{intensity}"),
            pl.col(intensity).min().round(1).alias(f"min_{intensity}"),
            pl.col("price_eur_per_mwh").mean().round(2).alias("mean_price_eur_per_mwh"),
            pl.col("price_eur_per_mwh").min().round(2).alias("min_price_eur_per_mwh"),
        )
        .sort("zone")
    )
    shortest = market.bid_options.group_by("bid_id").agg(pl.col("duration_h").min())
    bids = market.bids.join(shortest, on="bid_id").with_columns(
        (pl.col("gpus") * pl.col("duration_h")).alias("work_h"),
        _size_bucket(pl.col("gpus")).alias("gpus_bucket"),
    )
    by_size = (
        bids.group_by("gpus_bucket")
        .agg(
            pl.len().alias("bids"),
            pl.col("work_h").sum().alias("work_h"),
            pl.col("value_eur").sum().round(2).alias("value_eur"),
            (pl.col("value_eur").sum() / pl.col("work_h").sum()).round(3)
            .alias("value_eur_per_work_h"),
            (pl.col("allowed_jurisdictions") != "*").sum().alias("restricted"),
        )
        .sort("gpus_bucket")
        .with_columns(pl.col("gpus_bucket").cast(pl.String))
        .rename({"gpus_bucket": "gpus"})
    )
    return MarketSummary(
        window=f"{cfg.window_start_utc:%Y-%m-%dT%H:%MZ} to {cfg.window_end_utc:%Y-%m-%dT%H:%MZ}",
        hours=cfg.hours,
        carbon_price_eur_per_t=cfg.carbon_price_eur_per_t,
        carbon_signal=cfg.carbon_signal,
        n_members=market.members.height,
        n_sites=market.sites.height,
        n_bids=market.bids.height,
        gpu_hours_offered=int(cap["gpus_available"].sum()),
        work_h_demanded=int(bids["work_h"].sum()) if bids.height else 0,
        value_eur=round(float(market.bids["value_eur"].sum()), 2),
        sites=sites,
        gpus=gpus,
        zones=zones,
        bids_by_size=by_size,
    )

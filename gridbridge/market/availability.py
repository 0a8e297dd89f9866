"""The availability model: how many pooled GPUs a site offers in each hour, and at what ask.

A pool of ``N`` GPUs (whole nodes of ``k``) is not free all the time. In hour ``h`` it offers
``floor(N * a(h) / k) * k`` GPUs, where the available fraction ``a(h)`` is the product of

* **local daytime load** — the owner's own users work 08:00–20:00 local time on weekdays and
  take a share ``d`` of the pool (``d`` drawn per pool uniformly in [0.15, 0.35]); at
  weekends in the same hours they take ``d / 3``; at night nothing;
* **maintenance** — with probability 0.5 a pool has one maintenance window in the week,
  starting at a uniformly drawn hour, 4–12 h long, that takes a share in [0.5, 1.0] of it.

The ask (EUR per GPU-hour, on top of energy) is the GPU type's reference ask times a per-pool
factor drawn uniformly in [0.85, 1.15], rounded to 0.0001 EUR, the same in every hour.

Every draw comes from a :class:`random.Random` seeded with a string of the seed, site and
GPU type, so a pool's numbers depend on nothing else (adding a site changes no other site).
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from gridbridge.bundle.options import parse_gpu_options

DAY_START_H, DAY_END_H = 8, 20
LOAD_SHARE = (0.15, 0.35)
WEEKEND_FACTOR = 1 / 3
MAINTENANCE_PROBABILITY = 0.5
MAINTENANCE_HOURS = (4, 12)
MAINTENANCE_SHARE = (0.5, 1.0)
ASK_FACTOR = (0.85, 1.15)


def pool_fractions(rng: random.Random, hours: list[datetime], timezone: str) -> list[float]:
    """Available fraction of one pool for each hour (UTC hour-beginnings)."""
    tz = ZoneInfo(timezone)
    load = rng.uniform(*LOAD_SHARE)
    fractions = []
    for hour in hours:
        local = hour.astimezone(tz)
        taken = 0.0
        if DAY_START_H <= local.hour < DAY_END_H:
            taken = load if local.weekday() < 5 else load * WEEKEND_FACTOR
        fractions.append(1.0 - taken)
    if rng.random() < MAINTENANCE_PROBABILITY:
        length = rng.randint(*MAINTENANCE_HOURS)
        start = rng.randrange(0, max(1, len(hours) - length + 1))
        share = rng.uniform(*MAINTENANCE_SHARE)
        for h in range(start, min(len(hours), start + length)):
            fractions[h] *= 1.0 - share
    return fractions


def capacity_table(
    sites: pl.DataFrame, gpus: pl.DataFrame, hours: list[datetime], seed: int
) -> pl.DataFrame:
    """``capacity`` rows (site_id, gpu_type, hour_utc, gpus_available, ask_eur_per_gpu_hour)."""
    node = dict(zip(gpus["gpu_type"], gpus["gpus_per_node"], strict=True))
    ref_ask = dict(zip(gpus["gpu_type"], gpus["ref_ask_eur_per_gpu_hour"], strict=True))
    rows: dict[str, list[object]] = {
        "site_id": [], "gpu_type": [], "hour_utc": [], "gpus_available": [],
        "ask_eur_per_gpu_hour": [],
    }
    for site in sites.iter_rows(named=True):
        for gpu_type, pooled in parse_gpu_options(site["gpu_pools"]).items():
            rng = random.Random(f"capacity:{seed}:{site['site_id']}:{gpu_type}")
            fractions = pool_fractions(rng, hours, site["timezone"])
            ask = round(ref_ask[gpu_type] * rng.uniform(*ASK_FACTOR), 4)
            k = int(node[gpu_type])
            for hour, fraction in zip(hours, fractions, strict=True):
                rows["site_id"].append(site["site_id"])
                rows["gpu_type"].append(gpu_type)
                rows["hour_utc"].append(hour)
                rows["gpus_available"].append(math.floor(pooled * fraction / k + 1e-9) * k)
                rows["ask_eur_per_gpu_hour"].append(ask)
    return pl.DataFrame(rows, schema={
        "site_id": pl.String, "gpu_type": pl.String, "hour_utc": pl.Datetime("us", "UTC"),
        "gpus_available": pl.Int64, "ask_eur_per_gpu_hour": pl.Float64,
    })

"""The bid model: a seeded, documented distribution of training-job bids for one window.

For bid ``i`` (every draw from ``random.Random("bids:<seed>:<i>")``, so bid ``i`` does not
depend on how many bids are made):

* **member** — drawn with weights equal to the members' pledge shares;
* **gang size** — 8, 16, 32, 64, 128, 256 or 512 GPUs with weights 20, 22, 20, 16, 11, 7, 4;
* **residency** — 70 % anywhere (``*``), 20 % the EU plus countries with an EU adequacy
  decision among the members (``CA;DE;GB;KR``), 10 % home-only (the member's own code);
* **GPU options** — one, two or three types (weights 0.4, 0.4, 0.2), drawn without
  replacement with weights sqrt(pooled GPUs of the type), among types that have at least one
  pool big enough for the gang inside the allowed jurisdictions (so no bid is impossible by
  construction; it may still lose to scarcity);
* **duration** — the job's size in H100-hours per GPU is log-uniform in [2, 72]; on type t it
  takes ``ceil(h / relative_speed_t)`` hours (at least 2); options longer than 72 h are dropped;
* **release and deadline** — release uniform over the hours where the shortest option still
  fits; deadline = release + longest option × (1 + slack), slack uniform in [0.1, 1.5], capped
  at the window end; options that no longer fit are dropped;
* **value** — ``gpus × shortest duration × v`` EUR with ``v`` log-normal, median 1.9 EUR per
  GPU-hour of work, sigma 0.4 (rounded to the cent).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import polars as pl

from gridbridge.bundle.options import format_gpu_options, parse_gpu_options
from gridbridge.errors import InputError

GANG_SIZES = (8, 16, 32, 64, 128, 256, 512)
GANG_WEIGHTS = (20, 22, 20, 16, 11, 7, 4)
OPTION_COUNTS = (1, 2, 3)
OPTION_WEIGHTS = (0.4, 0.4, 0.2)
EU_ADEQUACY = ("CA", "DE", "GB", "KR")
RESIDENCY_WEIGHTS = {"*": 0.7, "eu": 0.2, "home": 0.1}
H100_HOURS = (2.0, 72.0)
MAX_DURATION_H = 72
SLACK = (0.1, 1.5)
VALUE_MEDIAN_EUR_PER_WORK_H = 1.9
VALUE_SIGMA = 0.4
MAX_TRIES = 200


def _pools(sites: pl.DataFrame) -> list[tuple[str, str, int]]:
    """(jurisdiction, gpu_type, pooled GPUs) for every pool."""
    return [
        (site["jurisdiction"], gpu_type, count)
        for site in sites.iter_rows(named=True)
        for gpu_type, count in parse_gpu_options(site["gpu_pools"]).items()
    ]


def _allowed(rng: random.Random, member: str) -> str:
    kind = rng.choices(list(RESIDENCY_WEIGHTS), weights=list(RESIDENCY_WEIGHTS.values()))[0]
    if kind == "*":
        return "*"
    if kind == "eu" and member in EU_ADEQUACY:
        return ";".join(EU_ADEQUACY)
    return member


def _pick_types(rng: random.Random, weights: dict[str, float], n: int) -> list[str]:
    pool = dict(weights)
    picked = []
    while pool and len(picked) < n:
        choice = rng.choices(list(pool), weights=list(pool.values()))[0]
        picked.append(choice)
        del pool[choice]
    return picked


def make_bid(
    i: int, seed: int, prefix: str, members: pl.DataFrame, gpus: pl.DataFrame,
    pools: list[tuple[str, str, int]], start: datetime, hours: int,
) -> dict[str, object]:
    """Draw bid number ``i`` (see the module docstring for the distribution)."""
    rng = random.Random(f"bids:{seed}:{i}")
    speed = dict(zip(gpus["gpu_type"], gpus["relative_speed"], strict=True))
    member = rng.choices(list(members["member"]), weights=list(members["pledge_share"]))[0]
    for _ in range(MAX_TRIES):
        size = rng.choices(GANG_SIZES, weights=GANG_WEIGHTS)[0]
        allowed = _allowed(rng, member)
        ok = set(allowed.split(";"))
        big_enough: dict[str, int] = {}
        for jurisdiction, gpu_type, count in pools:
            if (allowed == "*" or jurisdiction in ok) and count >= size:
                big_enough[gpu_type] = big_enough.get(gpu_type, 0) + count
        if not big_enough:
            continue
        n = rng.choices(OPTION_COUNTS, weights=OPTION_WEIGHTS)[0]
        types = _pick_types(rng, {t: math.sqrt(c) for t, c in sorted(big_enough.items())}, n)
        h100_hours = math.exp(rng.uniform(*map(math.log, H100_HOURS)))
        durations = {t: max(2, math.ceil(h100_hours / speed[t])) for t in types}
        durations = {t: d for t, d in durations.items() if d <= min(MAX_DURATION_H, hours)}
        if not durations:
            continue
        shortest, longest = min(durations.values()), max(durations.values())
        release = rng.randint(0, hours - shortest)
        slack = rng.uniform(*SLACK)
        deadline = min(hours, release + math.ceil(longest * (1 + slack)))
        options = {t: d for t, d in sorted(durations.items(), key=lambda kv: (kv[1], kv[0]))
                   if d <= deadline - release}
        v = math.exp(rng.gauss(math.log(VALUE_MEDIAN_EUR_PER_WORK_H), VALUE_SIGMA))
        return {
            "bid_id": f"{prefix}B{i:04d}",
            "member": member,
            "gpu_options": format_gpu_options(options),
            "gpus": size,
            "release_utc": start + timedelta(hours=release),
            "deadline_utc": start + timedelta(hours=deadline),
            "value_eur": round(size * shortest * v, 2),
            "allowed_jurisdictions": allowed,
        }
    raise InputError(
        f"bid {i}: no GPU pool can take any drawn job in {MAX_TRIES} tries; "
        "check the dataset's sites.gpu_pools (it needs pools of at least 8 GPUs)"
    )


def bids_table(
    n: int, seed: int, prefix: str, members: pl.DataFrame, gpus: pl.DataFrame,
    sites: pl.DataFrame, start: datetime, hours: int,
) -> pl.DataFrame:
    """``n`` bids for the window ``[start, start + hours)``."""
    pools = _pools(sites)
    rows = [make_bid(i, seed, prefix, members, gpus, pools, start, hours) for i in range(1, n + 1)]
    schema = {
        "bid_id": pl.String, "member": pl.String, "gpu_options": pl.String, "gpus": pl.Int64,
        "release_utc": pl.Datetime("us", "UTC"), "deadline_utc": pl.Datetime("us", "UTC"),
        "value_eur": pl.Float64, "allowed_jurisdictions": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)

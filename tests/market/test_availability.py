"""The availability model: daytime load, maintenance, whole nodes, seeded asks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl

from gridbridge.market import availability
from gridbridge.market.availability import capacity_table, pool_fractions

MONDAY = datetime(2023, 7, 3, tzinfo=UTC)
WEEK = [MONDAY + timedelta(hours=h) for h in range(168)]


def _no_maintenance_rng() -> random.Random:
    # Find a seed whose pool draws no maintenance window, so the daytime pattern is bare.
    for i in range(100):
        probe = random.Random(f"probe:{i}")
        probe.uniform(0, 1)
        if probe.random() >= availability.MAINTENANCE_PROBABILITY:
            return random.Random(f"probe:{i}")
    raise AssertionError("no seed without maintenance")


def test_daytime_load_follows_the_local_clock() -> None:
    fractions = pool_fractions(_no_maintenance_rng(), WEEK, "Europe/Berlin")
    # Monday 10:00 Berlin (CEST) = 08:00 UTC: the owner's users take a share.
    assert fractions[8] < 1.0
    lo, hi = availability.LOAD_SHARE
    assert 1 - hi <= fractions[8] <= 1 - lo
    # Monday 02:00 Berlin = 00:00 UTC: nothing taken.
    assert fractions[0] == 1.0
    # 07:00 UTC is 09:00 Berlin but 16:00 Seoul: both daytime; 22:00 UTC is night in Berlin.
    assert fractions[22] == 1.0
    # Saturday daytime takes a third of the weekday share.
    saturday_noon = 5 * 24 + 10
    assert abs((1 - fractions[saturday_noon]) - (1 - fractions[8]) / 3) < 1e-12


def test_seoul_daytime_is_utc_night() -> None:
    fractions = pool_fractions(_no_maintenance_rng(), WEEK, "Asia/Seoul")
    assert fractions[2] < 1.0  # 11:00 KST Monday
    assert fractions[14] == 1.0  # 23:00 KST


def test_capacity_is_whole_nodes_within_the_pool_and_not_flat() -> None:
    sites = pl.DataFrame({
        "site_id": ["A-1", "B-1"], "gpu_pools": ["H100:64;GH200:100", "A100:40"],
        "timezone": ["Europe/London", "Asia/Singapore"],
    })
    gpus = pl.DataFrame({
        "gpu_type": ["H100", "GH200", "A100"], "gpus_per_node": [8, 4, 8],
        "ref_ask_eur_per_gpu_hour": [1.1, 1.2, 0.5],
    })
    cap = capacity_table(sites, gpus, WEEK, seed=7)
    assert cap.height == 3 * 168
    node = {"H100": 8, "GH200": 4, "A100": 8}
    pool = {("A-1", "H100"): 64, ("A-1", "GH200"): 100, ("B-1", "A100"): 40}
    for row in cap.iter_rows(named=True):
        assert row["gpus_available"] % node[row["gpu_type"]] == 0
        assert 0 <= row["gpus_available"] <= pool[(row["site_id"], row["gpu_type"])]
    per_pool = cap.group_by("site_id", "gpu_type").agg(
        pl.col("gpus_available").n_unique().alias("levels"),
        pl.col("ask_eur_per_gpu_hour").n_unique().alias("asks"),
    )
    assert per_pool["levels"].min() > 1  # daytime dips: not flat
    assert per_pool["asks"].max() == 1  # one ask per pool
    assert cap.equals(capacity_table(sites, gpus, WEEK, seed=7))
    assert not cap.equals(capacity_table(sites, gpus, WEEK, seed=8))


def test_a_pool_does_not_depend_on_other_sites() -> None:
    gpus = pl.DataFrame({"gpu_type": ["H100"], "gpus_per_node": [8],
                         "ref_ask_eur_per_gpu_hour": [1.1]})
    one = pl.DataFrame({"site_id": ["A-1"], "gpu_pools": ["H100:64"], "timezone": ["UTC"]})
    two = pl.DataFrame({"site_id": ["Z-9", "A-1"], "gpu_pools": ["H100:8", "H100:64"],
                        "timezone": ["UTC", "UTC"]})
    a = capacity_table(one, gpus, WEEK, seed=1)
    b = capacity_table(two, gpus, WEEK, seed=1).filter(pl.col("site_id") == "A-1")
    assert a.equals(b)

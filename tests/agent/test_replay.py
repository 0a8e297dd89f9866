"""Replay of the real bundled dataset (datasets/bridge-2023): values, mapping, wrap-around."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.hourly import next_hours
from gridbridge.agent.replay import ReplayCarbon, ReplayClock, ReplayGrid, ReplayPrice
from gridbridge.market.source import read_dataset
from tests.conftest import BRIDGE_2023


@pytest.fixture(scope="module")
def grid() -> ReplayGrid:
    return ReplayGrid(BRIDGE_2023)


@pytest.fixture(scope="module")
def truth() -> pl.DataFrame:
    return read_dataset(BRIDGE_2023).grid


def row(truth: pl.DataFrame, zone: str, hour: datetime) -> dict:
    return truth.filter((pl.col("zone") == zone) & (pl.col("hour_utc") == hour)).row(0, named=True)


def test_replay_on_a_2023_clock_reads_each_hour_as_itself(grid: ReplayGrid,
                                                          truth: pl.DataFrame) -> None:
    hours = next_hours(datetime(2023, 7, 3, 9, 47, tzinfo=UTC), 48)
    lifecycle = ReplayCarbon(grid, zone="GB", signal="lifecycle").forecast(hours)
    direct = ReplayCarbon(grid, zone="GB", signal="direct").forecast(hours)
    price = ReplayPrice(grid, zone="GB").forecast(hours)
    assert lifecycle.provider == "replay:bridge-2023" and lifecycle.signal == "lifecycle"
    assert direct.signal == "direct" and price.signal is None
    for hour in hours:
        expected = row(truth, "GB", hour)
        assert lifecycle.values[hour] == expected["carbon_lifecycle_g_per_kwh"]
        assert direct.values[hour] == expected["carbon_direct_g_per_kwh"]
        assert price.values[hour] == expected["price_eur_per_mwh"]
    assert all(direct.values[h] < lifecycle.values[h] for h in hours)


def test_replay_maps_now_to_the_start_and_keeps_negative_prices(grid: ReplayGrid,
                                                                truth: pl.DataFrame) -> None:
    negative = truth.filter((pl.col("zone") == "DE") & (pl.col("price_eur_per_mwh") < 0))
    assert negative.height > 0  # Germany had negative hours in 2023
    start = negative["hour_utc"][0]
    clock = ReplayClock(start_utc=start)
    hours = next_hours(datetime(2026, 1, 5, 8, 10, tzinfo=UTC), 24)
    price = ReplayPrice(grid, zone="DE", clock=clock).forecast(hours)
    assert clock.anchor_utc == hours[0]  # the first hour asked is the anchor
    assert price.values[hours[0]] == negative["price_eur_per_mwh"][0] < 0
    assert price.values[hours[5]] == row(truth, "DE", start + timedelta(hours=5))[
        "price_eur_per_mwh"]
    # A later cycle keeps the mapping: one real hour later is one replayed hour later.
    later = ReplayPrice(grid, zone="DE", clock=clock).forecast(hours[1:3])
    assert later.values == {h: price.values[h] for h in hours[1:3]}


def test_replay_wraps_around_the_end_of_the_data(grid: ReplayGrid, truth: pl.DataFrame) -> None:
    clock = ReplayClock(start_utc=datetime(2023, 12, 31, 22, tzinfo=UTC),
                        anchor_utc=datetime(2030, 1, 1, tzinfo=UTC))
    hours = next_hours(datetime(2030, 1, 1, tzinfo=UTC), 4)
    carbon = ReplayCarbon(grid, zone="KR", signal="lifecycle", clock=clock).forecast(hours)
    sources = [datetime(2023, 12, 31, 22, tzinfo=UTC), datetime(2023, 12, 31, 23, tzinfo=UTC),
               datetime(2023, 1, 1, 0, tzinfo=UTC), datetime(2023, 1, 1, 1, tzinfo=UTC)]
    assert [carbon.values[h] for h in hours] == [
        row(truth, "KR", s)["carbon_lifecycle_g_per_kwh"] for s in sources]


def test_replay_refuses_hours_outside_the_data_and_unknown_zones(grid: ReplayGrid) -> None:
    hours = next_hours(datetime(2025, 6, 1, tzinfo=UTC), 2)
    with pytest.raises(ProviderError, match=r"outside the data of zone GB .* fix: set start_utc"):
        ReplayCarbon(grid, zone="GB", signal="direct").forecast(hours)
    with pytest.raises(ProviderError, match=r"zone FR is not in .*bridge-2023 \(it has CA-ON"):
        ReplayPrice(grid, zone="FR").forecast(next_hours(datetime(2023, 6, 1, tzinfo=UTC), 2))


def test_an_unreadable_dataset_is_a_provider_error(tmp_path) -> None:
    with pytest.raises(ProviderError, match="cannot read the dataset"):
        ReplayGrid(tmp_path).zone("GB")

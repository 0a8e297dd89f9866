"""Writing bundles: round trips, byte-identical output, floats, TOML, format switching."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from gridbridge.bundle import read_bundle, read_bundle_with_warnings, write_bundle
from gridbridge.bundle.writer import config_toml
from gridbridge.errors import InputError
from optim.market import TABLES, Market
from tests.bundle.conftest import Bundle, assert_markets_equal

FORMATS = ("csv", "parquet")


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def market(bundle: Bundle) -> Market:
    return read_bundle(bundle.path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_gives_an_equal_market(tmp_path: Path, market: Market, fmt: str) -> None:
    out = write_bundle(market, tmp_path / fmt, fmt=fmt)
    assert sorted(files_of(out)) == sorted(["market.toml", *(f"{t}.{fmt}" for t in TABLES)])
    again, warnings = read_bundle_with_warnings(out)
    assert warnings == []
    assert_markets_equal(market, again)


@pytest.mark.parametrize("fmt", FORMATS)
def test_writing_twice_is_byte_identical(tmp_path: Path, market: Market, fmt: str) -> None:
    first = files_of(write_bundle(market, tmp_path / "a", fmt=fmt))
    second = files_of(write_bundle(market, tmp_path / "b", fmt=fmt))
    assert first == second
    # Re-reading and re-writing over the same folder changes nothing either.
    write_bundle(read_bundle(tmp_path / "a"), tmp_path / "a", fmt=fmt)
    assert files_of(tmp_path / "a") == first


def test_csv_from_parquet_equals_csv_direct(tmp_path: Path, market: Market) -> None:
    write_bundle(market, tmp_path / "pq", fmt="parquet")
    write_bundle(read_bundle(tmp_path / "pq"), tmp_path / "via", fmt="csv")
    write_bundle(market, tmp_path / "direct", fmt="csv")
    assert files_of(tmp_path / "via") == files_of(tmp_path / "direct")


def test_csv_form(tmp_path: Path, market: Market) -> None:
    out = write_bundle(market, tmp_path / "b")
    capacity = (out / "capacity.csv").read_text().splitlines()
    assert capacity[0] == "site_id,gpu_type,hour_utc,gpus_available,ask_eur_per_gpu_hour"
    assert capacity[1] == "CA-TORONTO-1,A100,2023-07-03T00:00Z,8,1.25"  # sorted by key
    bids = (out / "bids.csv").read_text().splitlines()
    assert bids[1] == "B1,KR,H100:2;A100:3,8,2023-07-03T00:00Z,2023-07-03T04:00Z,500.0,*"
    assert (out / "sites.csv").read_text().splitlines()[0].endswith(",city")  # extras kept


def test_awkward_floats_round_trip_exactly(tmp_path: Path, market: Market) -> None:
    # Full 17-digit precision near the sane bounds of gridbridge.limits (+-10,000 EUR/MWh).
    values = [0.1 + 0.2, 1 / 3, 1e-7, 9999.999999999998, -1234.5678901234567, -0.0, 5e-324,
              2.5]
    n = market.grid.height
    grid = market.grid.with_columns(
        pl.Series("price_eur_per_mwh", (values * n)[:n], dtype=pl.Float64)
    )
    odd = dataclasses.replace(market, grid=grid)
    for fmt in FORMATS:
        again = read_bundle(write_bundle(odd, tmp_path / fmt, fmt=fmt))
        assert again.grid["price_eur_per_mwh"].to_list() == grid["price_eur_per_mwh"].to_list()


def test_config_toml_is_valid_and_keeps_extras(tmp_path: Path, market: Market) -> None:
    extra = {
        "scenario": 'heat "wave"\n\\ é',
        "weird key": 1,
        "nested": {"a": [1, 2.5, True], "b": date(2023, 7, 3)},
        "when": datetime(2023, 7, 3, 12, tzinfo=UTC),
        "ratio": float("inf"),
    }
    config = dataclasses.replace(market.config, extra=extra, time_limit_s=None)
    text = config_toml(config)
    parsed = tomllib.loads(text)
    assert parsed["window_start_utc"] == "2023-07-03T00:00Z"
    assert parsed["carbon_price_eur_per_t"] == 80.0 and "time_limit_s" not in parsed
    again = read_bundle(write_bundle(dataclasses.replace(market, config=config), tmp_path / "b"))
    assert again.config == config


def test_config_extra_that_toml_cannot_hold(tmp_path: Path, market: Market) -> None:
    config = dataclasses.replace(market.config, extra={"obj": object()})
    with pytest.raises(InputError, match="TOML cannot store"):
        write_bundle(dataclasses.replace(market, config=config), tmp_path / "b")


def test_switching_format_removes_the_other_tables(tmp_path: Path, market: Market) -> None:
    out = tmp_path / "b"
    write_bundle(market, out, fmt="csv")
    (out / "placements.csv").write_text("bid_id\n")  # not a bundle table: left alone
    write_bundle(market, out, fmt="parquet")
    names = set(files_of(out))
    assert "members.csv" not in names and "members.parquet" in names and "placements.csv" in names
    assert_markets_equal(market, read_bundle(out))


def test_unknown_format(tmp_path: Path, market: Market) -> None:
    with pytest.raises(InputError, match="csv or parquet"):
        write_bundle(market, tmp_path / "b", fmt="xlsx")


def test_hand_built_market_is_written_canonically(tmp_path: Path, market: Market) -> None:
    """Unsorted rows and gpu_options that disagree with bid_options: bid_options wins."""
    shuffled = dataclasses.replace(
        market,
        capacity=market.capacity.reverse(),
        bids=market.bids.reverse().with_columns(pl.lit("stale").alias("gpu_options")),
        bid_options=market.bid_options.reverse(),
        sites=market.sites.with_columns(pl.lit(1.5).alias("score")),
    )
    out = write_bundle(shuffled, tmp_path / "b")
    again = read_bundle(out)
    assert again.capacity.equals(market.capacity)
    assert again.bids.drop("gpu_options").equals(market.bids.drop("gpu_options"))
    # bid_options were reversed, so each bid lists its options in reverse order now.
    assert again.bids.filter(pl.col("bid_id") == "B1")["gpu_options"].item() == "A100:3;H100:2"
    assert again.sites["score"].to_list() == ["1.5", "1.5"]  # extras come back as text


def test_empty_bids_round_trip(tmp_path: Path, bundle: Bundle) -> None:
    bundle.drop_rows("bids", lambda _r: False)
    market = read_bundle(bundle.path)
    for fmt in FORMATS:
        again = read_bundle(write_bundle(market, tmp_path / fmt, fmt=fmt))
        assert_markets_equal(market, again)


def test_null_extra_cells_round_trip(tmp_path: Path, bundle: Bundle) -> None:
    bundle.set("sites", 1, "city", "")
    market = read_bundle(bundle.path)
    assert market.sites["city"].null_count() == 1
    for fmt in FORMATS:
        assert_markets_equal(market, read_bundle(write_bundle(market, tmp_path / fmt, fmt=fmt)))

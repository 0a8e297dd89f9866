"""The market maker on the bundled dataset: valid, seeded, byte-identical, documented ranges."""

from __future__ import annotations

import filecmp
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from gridbridge.bundle import read_bundle, write_bundle
from gridbridge.cli import app
from gridbridge.errors import InputError
from gridbridge.market import MakerOptions, make_market
from gridbridge.market.bids import GANG_SIZES
from tests.conftest import BRIDGE_2023, W27


@pytest.fixture(scope="module")
def market():
    return make_market(BRIDGE_2023, MakerOptions(week="2023-W27", bids=500, seed=1))


def test_window_is_the_iso_week(market) -> None:
    cfg = market.config
    assert cfg.window_start_utc.isoformat() == "2023-07-03T00:00:00+00:00"
    assert cfg.hours == 168


def test_capacity_covers_every_pool_and_hour(market) -> None:
    pools = market.capacity.select("site_id", "gpu_type").unique().height
    assert market.capacity.height == pools * 168
    assert market.sites.height >= 12
    assert set(market.sites["member"]) == {"KR", "CA", "GB", "DE", "SG"}
    assert set(market.sites["zone"]) == {"KR", "SG", "CA-ON", "CA-QC", "GB", "DE"}
    varying = market.capacity.group_by("site_id", "gpu_type").agg(
        (pl.col("gpus_available").max() > pl.col("gpus_available").min()).alias("varies")
    )
    assert varying["varies"].all()  # daytime load dips every pool: never flat


def test_bids_follow_the_documented_distribution(market) -> None:
    bids, options = market.bids, market.bid_options
    assert bids.height == 500
    assert set(bids["gpus"]).issubset(GANG_SIZES)
    assert options["duration_h"].min() >= 2 and options["duration_h"].max() <= 72
    per_bid = options.group_by("bid_id").agg(pl.len().alias("n"),
                                             pl.col("duration_h").min().alias("shortest"))
    assert per_bid["n"].min() >= 1 and per_bid["n"].max() <= 3
    joined = bids.join(per_bid, on="bid_id")
    start, end = market.config.window_start_utc, market.config.window_end_utc
    for row in joined.iter_rows(named=True):
        assert start <= row["release_utc"] < row["deadline_utc"] <= end
        assert row["release_utc"] + timedelta(hours=row["shortest"]) <= row["deadline_utc"]
        assert row["value_eur"] > 0
    anywhere = (bids["allowed_jurisdictions"] == "*").mean()
    assert 0.6 < anywhere < 0.8
    assert (bids["allowed_jurisdictions"] == bids["member"]).sum() > 0  # some home-only


def test_same_seed_same_bytes_other_seed_other_bids(tmp_path: Path, market) -> None:
    again = make_market(BRIDGE_2023, MakerOptions(week="2023-W27", bids=500, seed=1))
    write_bundle(market, tmp_path / "a")
    write_bundle(again, tmp_path / "b")
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert cmp.left_only == cmp.right_only == cmp.diff_files == []
    other = make_market(BRIDGE_2023, MakerOptions(week="2023-W27", bids=500, seed=2))
    assert not other.bids.equals(market.bids)


def test_bid_i_does_not_depend_on_the_bid_count() -> None:
    few = make_market(BRIDGE_2023, MakerOptions(bids=10, seed=3))
    many = make_market(BRIDGE_2023, MakerOptions(bids=40, seed=3))
    assert few.bids.equals(many.bids.head(10))


def test_shipped_bundle_is_what_the_maker_makes(tmp_path: Path, market) -> None:
    write_bundle(market, tmp_path / "w27")
    for path in sorted(W27.iterdir()):
        assert filecmp.cmp(path, tmp_path / "w27" / path.name, shallow=False), path.name
    assert read_bundle(W27).bids.height == 500


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (MakerOptions(week="2023-27"), "ISO week"),
        (MakerOptions(week="2024-W10"), "pick a week inside the dataset's year"),
        (MakerOptions(bids=-1), "--bids"),
        (MakerOptions(carbon_signal="marginal"), "--signal"),
        (MakerOptions(carbon_price_eur_per_t=float("nan")), "--carbon-price"),
        (MakerOptions(carbon_price_eur_per_t=-1.0), "--carbon-price must be between 0 and"),
        (MakerOptions(carbon_price_eur_per_t=1e6), "--carbon-price must be between 0 and"),
    ],
)
def test_bad_options_are_clear_errors(options: MakerOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_market(BRIDGE_2023, options)


def test_cli_make_then_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "m"
    made = runner.invoke(app, ["market", "make", "--bids", "20", "--seed", "5",
                               "--out", str(out)])
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["market", "summary", str(out)])
    assert shown.exit_code == 0, shown.output
    for text in ("Sites and pools", "GPUs by type", "Grid over the window", "Bids by gang size",
                 "KR-SUWON-1", "CA-QC", "20 bids"):
        assert text in shown.output
    as_json = runner.invoke(app, ["market", "summary", str(out), "--json"])
    assert '"n_bids": 20' in as_json.output

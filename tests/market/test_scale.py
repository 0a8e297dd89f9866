"""Markets of a chosen size: ``--sites`` picks or copies sites, ``--hours`` sets the window.

The default options' byte-identity with the shipped bundle is tested in test_maker.py.
"""

from __future__ import annotations

import filecmp
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from gridbridge.bundle import read_bundle, write_bundle
from gridbridge.bundle.rules import SLUG_PATTERN
from gridbridge.cli import app
from gridbridge.errors import InputError
from gridbridge.market import MakerOptions, make_market
from gridbridge.market.scale import select_sites
from gridbridge.market.source import read_dataset
from tests.conftest import BRIDGE_2023, W27


@pytest.fixture(scope="module")
def dataset_sites() -> pl.DataFrame:
    return read_dataset(BRIDGE_2023).sites


@pytest.fixture(scope="module")
def scaled():
    return make_market(BRIDGE_2023, MakerOptions(sites=16, hours=48, bids=50, seed=1))


def _pools(sites: pl.DataFrame) -> int:
    return sum(len(pools.split(";")) for pools in sites["gpu_pools"])


def test_six_sites_are_one_per_zone(dataset_sites: pl.DataFrame) -> None:
    six = select_sites(dataset_sites, 6)
    assert six.height == 6
    assert sorted(six["zone"]) == sorted(set(dataset_sites["zone"]))
    # Round-robin: within each zone the first site in site_id order.
    first = dataset_sites.sort("site_id").group_by("zone", maintain_order=True).first()
    assert set(six["site_id"]) == set(first["site_id"])


def test_subsets_grow_round_robin_and_keep_the_dataset_order(dataset_sites: pl.DataFrame) -> None:
    previous: set[str] = set()
    for n in range(1, dataset_sites.height + 1):
        picked = select_sites(dataset_sites, n)
        ids = set(picked["site_id"])
        assert len(ids) == n and previous < ids  # each count adds one site to the last
        order = [s for s in dataset_sites["site_id"] if s in ids]
        assert picked["site_id"].to_list() == order
        previous = ids
    assert select_sites(dataset_sites, dataset_sites.height).equals(dataset_sites)


def test_sixteen_sites_copy_the_first_two(dataset_sites: pl.DataFrame) -> None:
    sixteen = select_sites(dataset_sites, 16)
    ids = sixteen["site_id"].to_list()
    assert len(ids) == len(set(ids)) == 16
    assert all(pl.Series(ids).str.contains(SLUG_PATTERN))
    assert ids[:14] == dataset_sites["site_id"].to_list()
    first_two = sorted(dataset_sites["site_id"])[:2]
    assert ids[14:] == [f"{s}-C2" for s in first_two]
    same = ["member", "zone", "jurisdiction", "timezone", "gpu_pools", "pue",
            "tariff_adder_eur_per_mwh", "lat", "lon"]
    for original in first_two:
        a = dataset_sites.filter(pl.col("site_id") == original).select(same)
        b = sixteen.filter(pl.col("site_id") == f"{original}-C2").select(same)
        assert a.equals(b)
    # A second pass makes copy 3.
    assert select_sites(dataset_sites, 30)["site_id"][-1] == f"{first_two[1]}-C3"


def test_scaled_market_has_the_chosen_size(scaled) -> None:
    cfg = scaled.config
    assert cfg.window_start_utc.isoformat() == "2023-07-03T00:00:00+00:00"
    assert cfg.hours == 48
    assert cfg.window_end_utc - cfg.window_start_utc == timedelta(hours=48)
    assert scaled.sites.height == 16
    assert scaled.capacity.height == _pools(scaled.sites) * 48
    assert scaled.grid.height == scaled.sites["zone"].n_unique() * 48
    assert scaled.bids.height == 50
    assert scaled.bids["deadline_utc"].max() <= cfg.window_end_utc
    # A copy's capacity is drawn with its own site_id: same pools, other numbers.
    cap = scaled.capacity.sort("hour_utc")
    original = sorted(scaled.sites["site_id"])[0]
    a = cap.filter(pl.col("site_id") == original)
    b = cap.filter(pl.col("site_id") == f"{original}-C2")
    assert a["gpu_type"].to_list() == b["gpu_type"].to_list()
    assert not a.select("gpus_available", "ask_eur_per_gpu_hour").equals(
        b.select("gpus_available", "ask_eur_per_gpu_hour"))


def test_two_weeks() -> None:
    market = make_market(BRIDGE_2023, MakerOptions(sites=6, hours=336, bids=20))
    assert market.config.hours == 336
    assert market.capacity.height == _pools(market.sites) * 336
    assert market.grid.height == 6 * 336
    assert market.grid["hour_utc"].max() == market.config.window_start_utc + timedelta(hours=335)


def test_scaled_market_round_trips_through_a_bundle(tmp_path: Path, scaled) -> None:
    write_bundle(scaled, tmp_path / "m")
    back = read_bundle(tmp_path / "m")
    assert back.config.hours == 48
    assert back.sites.height == 16
    assert back.capacity.height == scaled.capacity.height
    assert back.bids["bid_id"].sort().equals(scaled.bids["bid_id"].sort())


def test_all_sites_and_one_week_is_the_shipped_bundle(tmp_path: Path) -> None:
    market = make_market(BRIDGE_2023, MakerOptions(sites=14, hours=168))
    write_bundle(market, tmp_path / "w27")
    for path in sorted(W27.iterdir()):
        assert filecmp.cmp(path, tmp_path / "w27" / path.name, shallow=False), path.name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (MakerOptions(sites=0), "--sites must be between 1 and 256, got 0"),
        (MakerOptions(sites=257), "--sites must be between 1 and 256, got 257"),
        (MakerOptions(hours=0), "--hours must be between 1 and 8784, got 0"),
        (MakerOptions(hours=8785), "--hours must be between 1 and 8784, got 8785"),
        (MakerOptions(hours=1, bids=5), "--hours 1 is shorter than the shortest job"),
        (MakerOptions(week="2023-W52", hours=336), "--hours 336: the window"),
    ],
)
def test_bad_sizes_are_clear_errors(options: MakerOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_market(BRIDGE_2023, options)


def test_select_sites_refuses_bad_counts(dataset_sites: pl.DataFrame) -> None:
    for n in (0, -3, 257):
        with pytest.raises(InputError, match="--sites must be between 1 and 256"):
            select_sites(dataset_sites, n)


def test_cli_make_with_sites_and_hours(tmp_path: Path) -> None:
    out = tmp_path / "m"
    made = CliRunner().invoke(app, ["market", "make", "--sites", "16", "--hours", "48",
                                    "--bids", "50", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert "16 sites" in made.output and "50 bids" in made.output
    market = read_bundle(out)
    assert market.config.hours == 48 and market.sites.height == 16


def test_cli_bad_sites_is_one_clear_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from gridbridge.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["market", "make", "--sites", "0", "--out", str(tmp_path / "m")])
    assert exit_info.value.code != 0
    assert "--sites must be between 1 and 256, got 0" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()

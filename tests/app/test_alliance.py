"""The Alliance page: the map, the sites with their grids at the map's hour, heatmaps, free
GPUs; in bundle mode and against a real exchange."""

from __future__ import annotations

import io

import polars as pl

from gridbridge.bundle.options import split_gpu_options
from tests.app.conftest import AppExchange, SmallBundle
from tests.app.find import chart_data, chart_titles, deck, table

CHARTS = ["Carbon intensity (direct), gCO2eq/kWh", "Wholesale price, EUR/MWh",
          "Free GPUs per pool (site · GPU type), GPUs",
          "Free GPUs across the alliance by type, GPUs"]


def _first_hour_grid(grid: pl.DataFrame, column: str) -> dict[str, float]:
    first = grid["hour_utc"].min()
    return dict(grid.filter(pl.col("hour_utc") == first).select("zone", column).iter_rows())


def test_bundle_sites_map_and_grids(bundle_app, small_bundle: SmallBundle) -> None:
    at = bundle_app("alliance")
    sites = pl.read_csv(small_bundle.bundle / "sites.csv")
    grid = pl.read_csv(small_bundle.bundle / "grid.csv")
    shown = table(at, "pooled_gpus")
    assert sorted(shown["site_id"]) == sorted(sites["site_id"])
    pooled = {s: sum(split_gpu_options(p)[0].values())
              for s, p in sites.select("site_id", "gpu_pools").iter_rows()}
    assert dict(zip(shown["site_id"], shown["pooled_gpus"], strict=True)) == pooled
    # The map's hour is the window's first (the demo week is not "now").
    direct = _first_hour_grid(grid, "carbon_direct_g_per_kwh")
    zones = dict(sites.select("site_id", "zone").iter_rows())
    assert {s: v for s, v in zip(shown["site_id"], shown["carbon_g_per_kwh"], strict=True)} == {
        s: direct[zones[s]] for s in shown["site_id"]}
    spec = deck(at)
    assert len(spec["layers"][0]["data"]) == len(sites)
    assert all(p["intensity"].endswith("gCO2eq/kWh") for p in spec["layers"][0]["data"])
    assert chart_titles(at) == CHARTS
    assert len(chart_data(at, "Carbon intensity")) == grid.height


def test_bundle_lifecycle_signal(bundle_app, small_bundle: SmallBundle) -> None:
    at = bundle_app("alliance")
    at.radio(key="alliance_signal").set_value("lifecycle").run()
    assert not at.exception
    grid = pl.read_csv(small_bundle.bundle / "grid.csv")
    lifecycle = _first_hour_grid(grid, "carbon_lifecycle_g_per_kwh")
    shown = table(at, "pooled_gpus")
    sites = dict(pl.read_csv(small_bundle.bundle / "sites.csv")
                 .select("site_id", "zone").iter_rows())
    assert list(shown["carbon_g_per_kwh"]) == [lifecycle[sites[s]] for s in shown["site_id"]]
    assert chart_titles(at)[0] == "Carbon intensity (lifecycle), gCO2eq/kWh"


def test_exchange_outlook_as_reported(exchange_app, app_exchange: AppExchange) -> None:
    at = exchange_app("planner")("alliance")
    registry = app_exchange.client("planner").get("/v1/registry").json()
    shown = table(at, "pooled_gpus")
    assert dict(zip(shown["site_id"], shown["pooled_gpus"], strict=True)) == {
        s["site_id"]: sum(p["gpus"] for p in s["pools"]) for s in registry["sites"]}
    window = {"start_utc": "2023-07-03T00:00Z", "end_utc": "2023-07-05T00:00Z",
              "carbon_signal": "direct"}
    grid = pl.read_csv(io.BytesIO(app_exchange.client("planner").get(
        "/v1/outlook/grid.csv", params=window).content), try_parse_dates=True)
    direct = _first_hour_grid(grid, "carbon_direct_g_per_kwh")
    zones = {s["site_id"]: s["zone"] for s in registry["sites"]}
    assert list(shown["carbon_g_per_kwh"]) == [direct[zones[s]] for s in shown["site_id"]]
    capacity = pl.read_csv(io.BytesIO(app_exchange.client("planner").get(
        "/v1/outlook/capacity.csv", params=window).content))
    drawn = chart_data(at, "Free GPUs per pool")
    assert len(drawn) == capacity.height
    assert int(drawn["gpus_available"].sum()) == int(capacity["gpus_available"].sum())
    assert chart_titles(at) == CHARTS


def test_exchange_site_token_sees_the_alliance(exchange_app) -> None:
    at = exchange_app("site")("alliance")
    assert "site KR-SUWON-1" in at.sidebar.caption[0].value
    assert len(table(at, "pooled_gpus")) == 14

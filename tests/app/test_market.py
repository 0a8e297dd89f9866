"""The Market page: the stored clearing's figures, running a round (a what-if in bundle mode;
closing the gate and letting the exchange clear it in exchange mode), a narrower window, the
trade-off sweep, and what a member may see."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AppExchange, SmallBundle
from tests.app.find import chart_data, chart_titles, metric, open_round, pick, table, texts
from tests.exchange.conftest import _bid

CHARTS = ["Jobs per site over time (UTC)", "GPUs in use / GPUs offered, by GPU type",
          "Capacity price per pool (site · GPU type) and hour, EUR per GPU-hour"]


def _shows_clearing(at: AppTest, summary: dict, placements: list[str]) -> None:
    """The page's figures are the summary's, its Gantt bars and table the placements."""
    assert metric(at, "Welfare (EUR)") == f"{summary['welfare_eur']:,.0f}"
    assert metric(at, "Surplus (EUR)") == f"{summary['surplus_eur']:,.0f}"
    assert metric(at, "Emissions (t CO2eq)") == f"{summary['emissions_kg'] / 1000:,.2f}"
    assert metric(at, "Bids accepted") == f"{summary['accepted']}/{summary['bids']}"
    assert sorted(table(at, "payment_eur")["bid_id"]) == sorted(placements)
    assert sorted(chart_data(at, "Jobs per site")["bid_id"]) == sorted(placements)
    assert chart_titles(at)[:3] == CHARTS


def test_bundle_stored_clearing(bundle_app, small_bundle: SmallBundle) -> None:
    at = bundle_app("market")
    summary = orjson.loads((small_bundle.clearing / "summary.json").read_bytes())
    placed = pl.read_csv(small_bundle.clearing / "placements.csv")
    _shows_clearing(at, summary, placed["bid_id"].to_list())
    rejected = pl.read_csv(small_bundle.clearing / "rejected.csv")
    shown = table(at, "lost_opportunity_eur")
    assert sorted(shown["bid_id"]) == sorted(rejected["bid_id"])
    baselines = table(at, "kg_per_gpu_hour")
    assert list(baselines["method"]) == ["optimum", "carbon_blind_greedy",
                                         "carbon_aware_greedy"]
    for name in ("carbon_blind_greedy", "carbon_aware_greedy"):
        row = baselines[baselines["method"] == name].iloc[0]
        for figure in ("welfare_eur", "emissions_kg", "kg_per_gpu_hour"):
            assert row[figure] == summary["baselines"][name][figure]
    prices = chart_data(at, "Capacity price")
    assert len(prices) == pl.read_csv(small_bundle.clearing / "prices.csv").height
    use = chart_data(at, "GPUs in use")
    hour = use[use["gpus_used"] > 0].iloc[0]
    busy = placed.with_columns(pl.col("start_utc", "end_utc").str.to_datetime(
        "%Y-%m-%dT%H:%MZ", time_zone="UTC")).filter(
        (pl.col("gpu_type") == hour["gpu_type"])
        & (pl.col("start_utc") <= hour["hour_utc"]) & (pl.col("end_utc") > hour["hour_utc"]))
    assert hour["gpus_used"] == busy["gpus"].sum()


def test_bundle_what_if_at_a_carbon_price_and_window(bundle_app) -> None:
    at = bundle_app("market")
    start = datetime(2023, 7, 3, tzinfo=UTC)
    at.select_slider(key="wi_window").set_value((start, start + timedelta(hours=12)))
    at.number_input(key="wi_price").set_value(400.0)
    at.number_input(key="wi_limit").set_value(3.0)
    at.button[[b.label for b in at.button].index("Run round")].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(t.startswith("Showing a what-if at 400.00 EUR/t CO2eq over [2023-07-03 00:00 "
                            "UTC, 2023-07-03 12:00 UTC)") for t in texts(at, "info"))
    placed = table(at, "payment_eur")
    assert (placed["end_utc"] <= start + timedelta(hours=12)).all()
    emissions_t = placed["emissions_kg"].sum() / 1000
    assert metric(at, "Emissions (t CO2eq)") == f"{emissions_t:,.2f}"
    reasons = set(table(at, "lost_opportunity_eur")["reason"])
    assert "outside_window" in reasons
    assert texts(at, "success")[0].startswith("Clearing status optimal")

    at.text_input(key="sweep_prices").set_value("0, 400")
    at.number_input(key="sweep_limit").set_value(2.0)
    at.button[[b.label for b in at.button].index("Sweep carbon prices")].click().run()
    assert not at.exception, [e.message for e in at.exception]
    curve = table(at, "carbon_price_eur_per_t")
    assert sorted(set(curve["carbon_price_eur_per_t"])) == [0.0, 400.0]
    assert len(curve) == 6  # the optimum and both baselines at each price
    optimum = curve[(curve["method"] == "optimum") & (curve["carbon_price_eur_per_t"] == 400)]
    # The sweep re-clears the what-if's window: its 400 EUR/t point is the what-if itself.
    assert optimum["emissions_kg"].iloc[0] / 1000 == pytest.approx(emissions_t, rel=1e-6)
    assert any(t.startswith("Surplus against emissions") for t in chart_titles(at))

    at.button(key="drop_what_if").click().run()
    assert not any(t.startswith("Showing a what-if") for t in texts(at, "info"))


def test_bundle_without_a_clearing_explains_the_next_step(bundle_app, small_bundle,
                                                          monkeypatch) -> None:
    monkeypatch.delenv("GRIDBRIDGE_APP_CLEARING")
    at = bundle_app("market")
    assert any("This round has no clearing yet. Next step: run it above." in t
               for t in texts(at, "info"))


def test_exchange_stored_round(exchange_app, app_exchange: AppExchange) -> None:
    at = exchange_app("planner")("market")
    pick(at, app_exchange.cleared)
    base = f"/v1/rounds/{app_exchange.cleared}"
    summary = app_exchange.client("planner").get(f"{base}/summary").json()
    placed = app_exchange.client("planner").get(f"{base}/placements").json()
    _shows_clearing(at, summary, [p["bid_id"] for p in placed])
    rejected = app_exchange.client("planner").get(f"{base}/rejected").json()
    assert sorted(table(at, "lost_opportunity_eur")["bid_id"]) == sorted(
        r["bid_id"] for r in rejected)
    assert texts(at, "success")[0].endswith(f"solve time {summary['solve_seconds']:,.1f} s")


def test_exchange_planner_runs_a_round(exchange_app, app_exchange: AppExchange) -> None:
    round_id = open_round(app_exchange)
    _bid(app_exchange.exchange, "member_kr", round_id, "run-1", gpus=8, value_eur=20000.0,
         options=[{"gpu_type": "H100", "hours": 6}])
    _bid(app_exchange.exchange, "member_de", round_id, "run-2", gpus=8, value_eur=1.0)
    at = exchange_app("planner")("market")
    pick(at, round_id)
    at.button(key="close_round").click().run()
    assert not at.exception, [e.message for e in at.exception]
    found = app_exchange.client("planner").get(f"/v1/rounds/{round_id}").json()
    assert found["state"] == "cleared"
    assert list(table(at, "payment_eur")["bid_id"]) == ["run-1"]
    assert list(table(at, "lost_opportunity_eur")["bid_id"]) == ["run-2"]
    shown = at.selectbox[0].value
    assert (shown.round_id, shown.state) == (round_id, "cleared")


def test_exchange_member_sees_its_own_placements(exchange_app,
                                                 app_exchange: AppExchange) -> None:
    at = exchange_app("member_kr")("market")
    pick(at, app_exchange.cleared)
    placed = app_exchange.client("member_kr").get(
        f"/v1/rounds/{app_exchange.cleared}/placements").json()
    assert sorted(table(at, "payment_eur")["bid_id"]) == sorted(p["bid_id"] for p in placed)
    assert set(table(at, "payment_eur")["member"]) == {"KR"}
    assert any("does not see the round's summary" in t for t in texts(at, "caption"))
    assert any("only planners, treasurers and admins may read" in t for t in texts(at, "info"))
    assert not at.metric


def test_exchange_planner_opens_a_round(exchange_app, app_exchange: AppExchange) -> None:
    at = exchange_app("planner")("market")
    at.date_input(key="open_day").set_value(date(2023, 7, 3))
    at.number_input(key="open_days").set_value(2)
    at.number_input(key="open_price").set_value(120.0)
    at.button[[b.label for b in at.button].index("Open round")].click().run()
    assert not at.exception, [e.message for e in at.exception]
    picked = at.selectbox[0].value
    assert (picked.state, picked.carbon_price_eur_per_t) == ("open", 120.0)
    assert texts(at, "success") == [f"Round {picked.round_id} is open: members can bid now."]
    stored = app_exchange.client("planner").get(f"/v1/rounds/{picked.round_id}").json()
    assert (stored["window_start_utc"], stored["window_end_utc"]) == (
        "2023-07-03T00:00Z", "2023-07-05T00:00Z")
    assert any("This round has no clearing yet. Next step: run it above." in t
               for t in texts(at, "info"))


def test_exchange_site_sees_the_jobs_on_its_site(exchange_app,
                                                app_exchange: AppExchange) -> None:
    base = f"/v1/rounds/{app_exchange.cleared}/placements"
    site = app_exchange.client("planner").get(base).json()[0]["site_id"]
    at = exchange_app(f"site:{site}")("market")
    pick(at, app_exchange.cleared)
    placed = app_exchange.client(f"site:{site}").get(base).json()
    shown = table(at, "payment_eur")
    assert set(shown["site_id"]) == {site}
    assert sorted(shown["bid_id"]) == sorted(p["bid_id"] for p in placed)
    assert any("does not see the rejected bids" in t for t in texts(at, "caption"))
    for page in ("bids", "settlements"):
        other = exchange_app(f"site:{site}")(page)
        assert any(t.startswith("Site tokens ") for t in texts(other, "info")), page


def test_exchange_what_if_on_the_stored_bundle(exchange_app, app_exchange: AppExchange) -> None:
    at = exchange_app("treasurer")("market")
    pick(at, app_exchange.cleared)
    at.number_input(key="wi_price").set_value(0.0)
    at.number_input(key="wi_limit").set_value(3.0)
    at.button[[b.label for b in at.button].index("Run round")].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(t.startswith("Showing a what-if at 0.00 EUR/t CO2eq") for t in texts(at, "info"))
    stored = app_exchange.client("treasurer").get(
        f"/v1/rounds/{app_exchange.cleared}/placements").json()
    placed = table(at, "payment_eur")
    # The stored bundle names bids <member>:<bid_id>; the page shows the members' own ids.
    assert set(zip(placed["member"], placed["bid_id"], strict=True)) <= {
        ("KR", "kr-big"), ("KR", "kr-small"), ("DE", "de-big"), ("DE", "de-cheap")}
    assert {p["bid_id"] for p in stored} <= set(placed["bid_id"])  # no carbon fee: no fewer

"""Settlement invariants on random small markets (hypothesis), cleared and priced for real.

For every market: the round's ledger lines sum to exactly 0 cents; no bid pays more than its
value (in EUR and in ledger cents); every site receives at least its asks and the energy cost
of what it served; each carbon-fee line is carbon price × emissions within a cent; capacity
prices are >= 0 and the LP relaxation is never below the integer welfare; and the settlement
reports' totals (per member, per site, the carbon fund, the whole round) equal the ledger's.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings

from gridbridge.reports.build import build_reports_from
from gridbridge.reports.inputs import RoundInputs
from gridbridge.settlement import cents, round_postings
from optim.check import check_clearing
from optim.clearing import Clearing, clear
from optim.market import Market
from optim.options import SolveOptions
from tests.optim.kit import Kit, small_markets

OPTIONS = SolveOptions(time_limit_s=10, baselines=False, bound_iterations=50)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_markets())
def test_settlement_invariants(kit: Kit) -> None:
    market = kit.market()
    c = clear(market, OPTIONS)
    assert c.pricing is not None and c.pricing.converged
    assert c.pricing.lp_objective_eur >= c.totals.welfare_eur - 1e-6
    assert (c.prices["capacity_price_eur_per_gpu_hour"] >= 0).all()
    check = check_clearing(market, c.placements, c.rejected, c.summary(), c.prices)
    assert check.ok, check.problems
    p = c.placements
    assert (p["payment_eur"] <= p["value_eur"] + 1e-9).all()
    assert (p["uplift_eur"] >= 0).all()
    lines = round_postings("R", market.config.window_start_utc, p, market.members)
    assert int(lines["amount_cents"].sum()) == 0
    by_bid = {(r["bid_id"], r["account"]): r for r in lines.group_by("bid_id", "account").agg(
        pl.col("amount_cents").sum()).iter_rows(named=True)}
    for row in p.iter_rows(named=True):
        member = by_bid[(row["bid_id"], f"member:{row['member']}")]["amount_cents"]
        assert -member <= cents(row["value_eur"])  # pays at most its value, to the cent
        served = cents(row["ask_eur"]) + cents(row["energy_cost_eur"])
        site = by_bid.get((row["bid_id"], f"site:{row['site_id']}"))
        assert (site["amount_cents"] if site else 0) >= served
    fee = lines.filter((pl.col("kind") == "carbon_fee") & pl.col("account").str.starts_with(
        "alliance")).join(p.select("bid_id", "emissions_kg"), on="bid_id")
    for amount, kg in fee.select("amount_cents", "emissions_kg").iter_rows():
        assert abs(amount - kit.carbon_price * kg / 1000 * 100) <= 1.0
    _reports_equal_ledger(c, lines, market)


def _reports_equal_ledger(c: Clearing, lines: pl.DataFrame, market: Market) -> None:
    summary = {"round_id": "R", **c.summary()}
    placements = c.placements.with_columns(
        gpu_hours=pl.col("gpus") * (pl.col("end_utc") - pl.col("start_utc")).dt.total_hours())
    tables = build_reports_from(RoundInputs(
        clearing_dir=Path("no-true-up-here"), summary=summary, placements=placements,
        rejected=c.rejected, postings=lines, market=market, bundle="in memory"))
    balance = dict(lines.group_by("account").agg(pl.col("amount_cents").sum()).iter_rows())
    for member, net in tables["member_totals"].select("member", "net_cents").iter_rows():
        assert net == balance.get(f"member:{member}", 0)
    for site, revenue in tables["site_statements"].select("site_id", "revenue_cents").iter_rows():
        assert revenue == balance.get(f"site:{site}", 0)
    alliance = tables["alliance_summary"].row(0, named=True)
    assert alliance["ledger_sum_cents"] == 0
    assert alliance["carbon_fund_balance_cents"] == balance.get("alliance:carbon-fund", 0)
    assert int(tables["ledger"]["amount_cents"].sum()) == 0


def test_pricing_cut_short_says_so_and_still_caps_payments() -> None:
    from gridbridge.market import MakerOptions, make_market
    from tests.conftest import BRIDGE_2023 as DATASET

    market = make_market(DATASET, MakerOptions(week="2023-W27", bids=60, sites=4, hours=72,
                                               seed=2))
    full = clear(market, OPTIONS)
    short = clear(market, SolveOptions(time_limit_s=10, baselines=False, bound_iterations=50,
                                       pricing_time_limit_s=1e-9))
    assert full.pricing is not None and full.pricing.converged and full.pricing.iterations > 1
    assert short.pricing is not None and not short.pricing.converged
    assert short.pricing.iterations == 1 and short.pricing.largest_reduced_profit_eur > 0
    assert short.summary()["pricing"]["converged"] is False
    p = short.placements
    assert (p["payment_eur"] <= p["value_eur"] + 1e-9).all()

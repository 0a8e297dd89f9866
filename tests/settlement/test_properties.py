"""Settlement invariants on random small markets (hypothesis), cleared and priced for real.

For every market: the round's ledger lines sum to exactly 0 cents; no bid pays more than its
value (in EUR and in ledger cents); every site receives at least its asks and the energy cost
of what it served; each carbon-fee line is carbon price × emissions within a cent; capacity
prices are >= 0 and the LP relaxation is never below the integer welfare.
"""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings

from gridbridge.settlement import cents, round_postings
from optim.check import check_clearing
from optim.clearing import clear
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

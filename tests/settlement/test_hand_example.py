"""Prices, payments, uplift, a paradoxical rejection and ledger lines, worked by hand.

Two sites, three one-hour bids, all due in hour 0; hour 0 at site A is the one congested
(pool, hour). Every GPU-hour is 1 kWh (kit defaults). Per GPU-hour:

* site A (KR zone, member KR): energy 100 EUR/MWh → 0.10, ask 1.00, 0.5 kg → fee 0.05 at
  100 EUR/t: 1.15 EUR in all. 8 H100.
* site B (CA-ON, member CA): energy 0.05, ask 5.50, 0.05 kg → fee 0.005: 5.555 EUR. 8 H100.

Bids (GPUs, where allowed, value → net at A): B1 (KR) 6 GPUs, KR only, 39.90 → 33.00;
B2 (DE) 4 GPUs, anywhere, 22.60 → 18.00 at A, 22.60 − 22.22 = 0.38 at B; B3 (CA) 4 GPUs, KR
only, 20.60 → 16.00.

Integer optimum: A holds 8 GPUs, so B1 (6) excludes both others; B2 + B3 at A = 34.00 beats
B1 at A + B2 at B = 33.38. Welfare 34.00, B1 rejected.

LP relaxation: x1 = 1, x2 at A = 0.5, x2 at B = 0.5 (42.19 EUR). Site B has room, so its
price is 0 and B2's dual is its net there, 0.38; B2 at A is basic, so 18 − 4·π_A = 0.38 and
**π_A = 4.405 EUR per GPU-hour** in hour 0; every other (pool, hour) is priced 0.

Payments: B2 and B3 each pay energy 0.40 + ask 4.00 + capacity 4 × 4.405 = 17.62 + fee 0.20
= 22.22 EUR. B2's value is 22.60: it pays 22.22. B3's value is 20.60: it pays 20.60 and
1.62 EUR is uplift. B1 is rejected paradoxically: 33.00 − 6 × 4.405 = 6.57 EUR lost.

Ledger (cents): each of B2, B3 — member pays / site:A receives energy 40, ask 400, capacity
1762; member pays / carbon fund receives 20; B3's member receives 162 from alliance:uplift.
Round: the carbon fund's 40 cents refund the uplift; the remaining 122 are charged by pledge
share (KR 0.4, CA 0.3, DE 0.3): 48.8 → 49, 36.6 → 37, 36.6 → 37 = 123, so
alliance:rounding receives the 1-cent residue.
"""

from __future__ import annotations

import polars as pl
import pytest

from gridbridge.settlement import round_postings
from optim.check import check_clearing
from optim.clearing import clear
from optim.options import SolveOptions
from tests.optim.kit import Bid, Kit, Site, at


def example() -> Kit:
    return Kit(
        hours=2,
        sites=[Site("A", "KR", "KR", {"H100": 8}, ask=1.0),
               Site("B", "CA-ON", "CA", {"H100": 8}, ask=5.5, member="CA")],
        bids=[Bid("B1", "H100:1", 6, 0, 1, 39.90, allowed="KR", member="KR"),
              Bid("B2", "H100:1", 4, 0, 1, 22.60, member="DE"),
              Bid("B3", "H100:1", 4, 0, 1, 20.60, allowed="KR", member="CA")],
        intensity={"KR": [500, 500], "CA-ON": [50, 50]},
        price={"KR": [100, 100], "CA-ON": [50, 50]},
        carbon_price=100.0,
    )


@pytest.fixture(scope="module")
def cleared():  # type: ignore[no-untyped-def]
    return clear(example().market(), SolveOptions(time_limit_s=10))


def test_clearing_and_lp_relaxation(cleared) -> None:  # type: ignore[no-untyped-def]
    assert cleared.totals.welfare_eur == pytest.approx(34.0)
    assert sorted(cleared.placements["bid_id"]) == ["B2", "B3"]
    assert set(cleared.placements["site_id"]) == {"A"}
    assert cleared.pricing.converged
    assert cleared.pricing.lp_objective_eur == pytest.approx(42.19)


def test_prices(cleared) -> None:  # type: ignore[no-untyped-def]
    prices = cleared.prices
    assert prices.height == 4  # 2 pools x 2 hours
    hot = prices.filter(pl.col("capacity_price_eur_per_gpu_hour") > 0)
    assert hot.select("site_id", "gpu_type", "hour_utc").rows() == [("A", "H100", at(0))]
    assert hot["capacity_price_eur_per_gpu_hour"][0] == pytest.approx(4.405)


def test_payments_uplift_and_paradox(cleared) -> None:  # type: ignore[no-untyped-def]
    p = {r["bid_id"]: r for r in cleared.placements.iter_rows(named=True)}
    for bid in ("B2", "B3"):
        assert p[bid]["capacity_eur"] == pytest.approx(17.62)
        assert p[bid]["carbon_fee_eur"] == pytest.approx(0.20)
    assert p["B2"]["payment_eur"] == pytest.approx(22.22)
    assert p["B2"]["uplift_eur"] == pytest.approx(0.0)
    assert p["B3"]["payment_eur"] == pytest.approx(20.60)
    assert p["B3"]["uplift_eur"] == pytest.approx(1.62)
    lost = dict(zip(cleared.rejected["bid_id"], cleared.rejected["lost_opportunity_eur"],
                    strict=True))
    assert lost == {"B1": pytest.approx(6.57)}
    s = cleared.summary()["pricing"]
    assert s["uplift_eur"] == pytest.approx(1.62)
    assert s["paradoxically_rejected"] == 1
    assert s["paradoxically_rejected_value_eur"] == pytest.approx(6.57)
    assert s["congestion_revenue_eur"] == pytest.approx(35.24)


def test_ledger_lines(cleared) -> None:  # type: ignore[no-untyped-def]
    market = example().market()
    lines = round_postings("R1", at(0), cleared.placements, market.members)
    got = [(r["bid_id"], r["account"], r["kind"], r["amount_cents"])
           for r in lines.iter_rows(named=True)]
    per_bid = []
    for bid, member in (("B2", "member:DE"), ("B3", "member:CA")):
        per_bid += [(bid, member, "energy", -40), (bid, "site:A", "energy", 40),
                    (bid, member, "ask", -400), (bid, "site:A", "ask", 400),
                    (bid, member, "capacity", -1762), (bid, "site:A", "capacity", 1762),
                    (bid, member, "carbon_fee", -20), (bid, "alliance:carbon-fund",
                                                        "carbon_fee", 20)]
    per_bid += [("B3", "alliance:uplift", "uplift", -162), ("B3", "member:CA", "uplift", 162)]
    round_level = [
        (None, "alliance:carbon-fund", "uplift", -40), (None, "alliance:uplift", "uplift", 40),
        (None, "alliance:uplift", "uplift", 122),
        (None, "member:KR", "uplift", -49), (None, "member:CA", "uplift", -37),
        (None, "member:DE", "uplift", -37),
        (None, "alliance:rounding", "rounding", 1),
    ]
    assert got == per_bid + round_level
    assert int(lines["amount_cents"].sum()) == 0
    assert lines["posting_id"].to_list() == [f"R1:{i:06d}" for i in range(1, len(got) + 1)]
    assert set(lines["posted_at_utc"]) == {"2023-07-03T00:00Z"}
    # B3's member pays exactly its value: 2222 charged, 162 back.
    b3 = lines.filter((pl.col("bid_id") == "B3") & (pl.col("account") == "member:CA"))
    assert int(b3["amount_cents"].sum()) == -2060


def test_checker_recomputes_payments_from_prices(cleared) -> None:  # type: ignore[no-untyped-def]
    market = example().market()
    args = (market, cleared.placements, cleared.rejected, cleared.summary())
    assert check_clearing(*args, cleared.prices).ok
    tampered = cleared.placements.with_columns(
        pl.when(pl.col("bid_id") == "B3").then(21.0).otherwise(pl.col("payment_eur"))
        .alias("payment_eur"))
    report = check_clearing(market, tampered, *args[2:], cleared.prices)
    assert any("B3" in p and "payment_eur" in p for p in report.problems)
    assert any("more than its value" in p for p in report.problems)
    cheap = cleared.prices.with_columns(pl.col("capacity_price_eur_per_gpu_hour") * 0.5)
    report = check_clearing(*args, cheap)
    assert any("capacity_eur reported 17.62" in p for p in report.problems)
    negative = cleared.prices.with_columns(capacity_price_eur_per_gpu_hour=pl.lit(-1.0))
    assert any(">= 0 EUR per GPU-hour" in p for p in check_clearing(*args, negative).problems)
    assert any("no row" in p for p in check_clearing(*args, cleared.prices.head(2)).problems)


def test_a_market_without_bids_clears_and_prices_to_nothing() -> None:
    kit = example()
    kit.bids = []
    c = clear(kit.market(), SolveOptions(time_limit_s=5))
    assert c.placements.height == 0 and c.rejected.height == 0
    assert c.pricing is not None and c.pricing.converged
    assert (c.prices["capacity_price_eur_per_gpu_hour"] == 0).all()
    assert c.summary()["pricing"]["payments_eur"] == 0

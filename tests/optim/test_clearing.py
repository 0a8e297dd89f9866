"""The clearing on hand-solved markets, against brute force, and its invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings

from optim.check import check_clearing
from optim.clearing import Round, clear
from optim.frontier import frontier
from optim.options import SolveOptions, SolveStatus
from tests.optim.brute import best_welfare
from tests.optim.kit import Bid, Kit, Site, at, small_markets


def hand_market(**kw: object) -> Kit:
    """2 sites × 5 bids × 6 hours, solved by hand below.

    Every GPU-hour: ask 1 EUR, 1 kWh. KR: 100 EUR/MWh, 500 g/kWh; CA-ON: 50 EUR/MWh, 50 g/kWh;
    carbon price 100 EUR/t. Cost per GPU-hour: KR 1 + 0.1 + 0.05 = 1.15; CA 1 + 0.05 + 0.005
    = 1.055. CA1 has 8 H100 in hours 0–2 only.

    * B1 H100:3, 8 GPUs, anywhere, value 100: at CA 0–3 costs 25.32, at KR 27.60.
    * B2 H100:4 or A100:5, 8 GPUs, KR only, value 100: KR H100 36.80, KR A100 46.00.
    * B3 H100:2, 8 GPUs, deadline hour 2 (must start at 0), anywhere, value 40: CA 16.88,
      KR 18.40.
    * B4 A100:2, CA only: CA has no A100 -> no_site.
    * B5 H100:1, value 5: cheapest 8 × 1.055 = 8.44 -> below_cost.

    CA holds B1 or B3, not both. B1@CA, B3@KR H100 0–2, B2@KR H100 2–6: 74.68 + 21.60 +
    63.20 = 159.48. B3@CA, B1@KR H100 leaves KR H100 3 h, too few for B2's 4 h, so B2 goes
    to A100: 23.12 + 72.40 + 54.00 = 149.52. The optimum is 159.48 and unique.
    """
    kr = Site("KR1", "KR", "KR", {"H100": 8, "A100": 8})
    ca = Site("CA1", "CA-ON", "CA", {"H100": [8, 8, 8, 0, 0, 0]}, member="CA")
    bids = [
        Bid("B1", "H100:3", 8, 0, 6, 100.0),
        Bid("B2", "H100:4;A100:5", 8, 0, 6, 100.0, allowed="KR"),
        Bid("B3", "H100:2", 8, 0, 2, 40.0),
        Bid("B4", "A100:2", 8, 0, 6, 50.0, allowed="CA", member="CA"),
        Bid("B5", "H100:1", 8, 0, 6, 5.0),
    ]
    args = dict(hours=6, sites=[kr, ca], bids=bids, intensity={"KR": [500] * 6, "CA-ON": [50] * 6},
                price={"KR": [100] * 6, "CA-ON": [50] * 6}, carbon_price=100.0)
    args.update(kw)
    return Kit(**args)  # type: ignore[arg-type]


def test_hand_solved_market_gives_the_known_optimum() -> None:
    market = hand_market().market()
    c = clear(market)
    assert c.report.status is SolveStatus.OPTIMAL
    assert c.totals.welfare_eur == pytest.approx(159.48)
    got = {r["bid_id"]: (r["site_id"], r["gpu_type"], r["start_utc"], r["end_utc"])
           for r in c.placements.iter_rows(named=True)}
    assert got == {"B1": ("CA1", "H100", at(0), at(3)), "B2": ("KR1", "H100", at(2), at(6)),
                   "B3": ("KR1", "H100", at(0), at(2))}
    # Energy 24 + 32 + 16 kWh; emissions 24×0.05 + 48×0.5 = 25.2 kg; work 24 + 32 + 16.
    t = c.totals
    assert (t.energy_kwh, t.work_h, t.gpu_hours) == (72.0, 72.0, 72.0)
    assert t.emissions_kg == pytest.approx(25.2)
    assert t.energy_cost_eur == pytest.approx(6.0)
    assert t.ask_eur == pytest.approx(72.0)
    assert t.surplus_eur == pytest.approx(162.0)
    assert t.kg_per_work_h == pytest.approx(0.35)
    reasons = dict(zip(c.rejected["bid_id"], c.rejected["reason"], strict=True))
    assert reasons == {"B4": "no_site", "B5": "below_cost"}
    assert c.report.gap == pytest.approx(0.0, abs=1e-6)
    assert check_clearing(market, c.placements, c.rejected, c.summary()).ok


def test_carbon_price_moves_a_job_to_the_cleaner_grid() -> None:
    # Per GPU-hour (1 kWh): KR energy 0 EUR, 0.9 kg; CA energy 0.10 EUR, 0.03 kg. At 0 EUR/t
    # KR is cheaper by 0.10 EUR; at 1000 EUR/t KR costs 0.90 EUR of carbon against CA's 0.13.
    kit = Kit(hours=4, sites=[Site("KR1", "KR", "KR", {"H100": 8}),
                              Site("CA1", "CA-ON", "CA", {"H100": 8}, member="CA")],
              bids=[Bid("B1", "H100:2", 8, 0, 4, 100.0)],
              intensity={"KR": [900] * 4, "CA-ON": [30] * 4},
              price={"KR": [0] * 4, "CA-ON": [100] * 4})
    market = kit.market()
    assert clear(market, SolveOptions(carbon_price_eur_per_t=0)).placements["site_id"][0] == "KR1"
    dear = clear(market, SolveOptions(carbon_price_eur_per_t=1000))
    assert dear.placements["site_id"][0] == "CA1"
    # 16 GPU-hours at CA: value 100 − asks 16 − energy 1.6 − carbon 0.48 kg × 1 EUR/kg.
    assert dear.totals.welfare_eur == pytest.approx(100 - 16 - 1.6 - 0.48)


def test_outbid_names_the_full_site_and_hours() -> None:
    site = Site("KR1", "KR", "KR", {"H100": 8})
    kit = Kit(hours=4, sites=[site], intensity={"KR": [100] * 4}, price={"KR": [100] * 4},
              bids=[Bid("HI", "H100:4", 8, 0, 4, 500.0), Bid("LO", "H100:2", 8, 0, 4, 100.0)])
    c = clear(kit.market())
    assert c.placements["bid_id"].to_list() == ["HI"]
    row = c.rejected.row(0, named=True)
    assert row["reason"] == "outbid"
    # LO's best placement (the cheapest, at the start) needed hours 0–2, all taken by HI.
    assert row["detail"].endswith("full: KR1/H100 2023-07-03T00:00Z–2023-07-03T02:00Z")


def test_no_window_when_the_deadline_leaves_no_room() -> None:
    site = Site("KR1", "KR", "KR", {"H100": 8})
    kit = Kit(hours=6, sites=[site], intensity={"KR": [100] * 6},
              bids=[Bid("B1", "H100:5", 8, 3, 6, 500.0)])
    c = clear(kit.market())
    assert c.rejected["reason"].to_list() == ["no_window"]


def test_emissions_cap_is_respected_and_optimal() -> None:
    market = hand_market().market()
    cap_kg = 10.0
    c = clear(market, SolveOptions(emissions_cap_kg=cap_kg))
    assert c.totals.emissions_kg <= cap_kg + 1e-9
    assert c.totals.welfare_eur == pytest.approx(best_welfare(market, 100.0, cap_kg))
    assert check_clearing(market, c.placements, c.rejected, c.summary()).ok
    assert "emissions_cap" in set(c.rejected["reason"])


def test_frontier_rows_and_monotone_emissions() -> None:
    market = hand_market().market()
    frame = frontier(market, [6400, 0, 100, 1600])
    assert frame.height == 4 * 3
    opt = frame.filter(frame["method"] == "optimum")
    assert opt["carbon_price_eur_per_t"].to_list() == [0.0, 100.0, 1600.0, 6400.0]
    emissions = opt["emissions_kg"].to_list()
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(emissions))
    for price, welfare in zip(opt["carbon_price_eur_per_t"], opt["welfare_eur"], strict=True):
        assert welfare == pytest.approx(best_welfare(market, price))


def test_round_resolves_at_a_new_price_without_rebuilding() -> None:
    market = hand_market().market()
    r = Round(market)
    first = r.clear(0.0)
    second = r.clear(1600.0)
    assert first.report.seconds["build"] > 0
    assert second.report.seconds["build"] == 0.0
    assert second.totals.welfare_eur == pytest.approx(best_welfare(market, 1600.0))


# --- property tests on random small markets -------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_markets())
def test_random_markets_are_optimal_feasible_and_beat_the_baselines(kit: Kit) -> None:
    market = kit.market()
    c = clear(market)
    report = check_clearing(market, c.placements, c.rejected, c.summary())
    assert report.ok, report.problems
    assert c.report.status in (SolveStatus.OPTIMAL, SolveStatus.EMPTY)
    best = best_welfare(market, kit.carbon_price)
    assert c.totals.welfare_eur == pytest.approx(best, abs=1e-6)
    for baseline in c.baselines.values():
        assert c.totals.welfare_eur >= baseline.welfare_eur - 1e-6
    # The Lagrangian bound (capacity and gang rows) must hold on its own, not only after
    # the clearing takes the max with its objective.
    assert c.report.lagrangian_bound_eur is not None
    assert c.report.lagrangian_bound_eur >= best - 1e-6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_markets())
def test_neighbourhood_search_is_feasible_and_never_worse_than_its_start(kit: Kit) -> None:
    market = kit.market()
    c = clear(market, SolveOptions(whole_model_nonzeros=0, time_limit_s=5))
    assert check_clearing(market, c.placements, c.rejected, c.summary()).ok
    assert c.report.method in ("neighbourhood_search", "none")
    assert c.totals.welfare_eur >= c.report.warm_start_eur - 1e-6
    assert c.totals.welfare_eur <= best_welfare(market, kit.carbon_price) + 1e-6
    assert c.report.bound_eur >= c.totals.welfare_eur - 1e-6

"""The LP relaxation kept between the neighbourhood search and the pricing step.

At large sizes the clearing solves the relaxation before its neighbourhood search (its reduced
profits pick where bids may move) and asks the same :class:`optim.pricing.Relaxation` for
the prices afterwards. These tests check that this gives the LP relaxation of the whole
market, the same one the pricing step solves from scratch, and that a converged relaxation
is not solved again.
"""

from __future__ import annotations

import numpy as np
import pytest

from gridbridge.market import MakerOptions, make_market
from optim.candidates import enumerate_candidates, market_arrays
from optim.clearing import clear
from optim.options import SolveOptions
from optim.pricing import REDUCED_PROFIT_TOL_EUR, Relaxation, reduced_profits
from tests.conftest import BRIDGE_2023 as DATASET


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return make_market(DATASET, MakerOptions(week="2023-W27", bids=60, sites=4, hours=72,
                                             seed=2))


def test_search_path_prices_the_same_relaxation_as_pricing_from_scratch(market) -> None:  # type: ignore[no-untyped-def]
    options = SolveOptions(time_limit_s=5, baselines=False, bound_iterations=50)
    whole = clear(market, options)
    search = clear(market, SolveOptions(time_limit_s=5, baselines=False, bound_iterations=50,
                                        whole_model_nonzeros=0))
    assert whole.report.method == "whole_model"
    assert search.report.method == "neighbourhood_search"
    assert whole.pricing is not None and search.pricing is not None
    assert whole.pricing.converged and search.pricing.converged
    # One LP, however it was reached: the same optimum to well within a cent.
    assert search.pricing.lp_objective_eur == pytest.approx(whole.pricing.lp_objective_eur,
                                                            abs=1e-3)
    assert search.pricing.lp_objective_eur >= search.totals.welfare_eur - 1e-6


def test_converged_relaxation_prices_every_candidate_out_and_is_not_solved_again(
        market) -> None:  # type: ignore[no-untyped-def]
    arrays = market_arrays(market)
    cands = enumerate_candidates(market, arrays)
    net = cands.net_eur(market.config.carbon_price_eur_per_t)
    relaxation = Relaxation(cands, arrays, net, None)
    assert not relaxation.converged
    prices = relaxation.solve(60.0)
    assert prices.converged and relaxation.converged and prices.iterations > 1
    # Optimal for the whole relaxation: no candidate left out of the master prices in (one
    # in it may, held at its upper bound of 1 by a bound's dual rather than a row's).
    in_master = relaxation.positive[relaxation.in_master]
    outside = np.setdiff1d(np.arange(len(cands)), in_master)
    assert reduced_profits(cands, net, prices)[outside].max() <= REDUCED_PROFIT_TOL_EUR
    # Asked again (as the pricing step does after the search), it answers without a solve.
    assert relaxation.solve(60.0) is prices
    # Columns already in the master, or never profitable, are not added twice.
    assert relaxation.add(in_master) == 0
    assert relaxation.add(np.flatnonzero(net <= 0)) == 0
    assert relaxation.solve(60.0) is prices

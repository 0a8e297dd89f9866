"""The LP relaxation kept between the neighbourhood search and the pricing step.

At large sizes, with several search workers, the clearing solves the relaxation in a thread
while its neighbourhood search runs, and asks the same :class:`optim.pricing.Relaxation` for
the prices afterwards. These tests check that this gives the LP relaxation of the whole
market, the same one the pricing step solves from scratch, that a converged relaxation
is not solved again, that a master stopped by its time limit (one can outlast the time
left at XL) leaves usable duals, and that a failure in that thread fails the clearing.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from gridbridge.market import MakerOptions, make_market
from optim.candidates import enumerate_candidates, market_arrays
from optim.check import check_clearing
from optim.clearing import clear
from optim.errors import SolveTimeLimitError
from optim.options import SolveOptions
from optim.pricing import REDUCED_PROFIT_TOL_EUR, Relaxation, reduced_profits
from optim.solver import LpMaster
from tests.conftest import BRIDGE_2023 as DATASET


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return make_market(DATASET, MakerOptions(week="2023-W27", bids=60, sites=4, hours=72,
                                             seed=2))


def _inputs(market):  # type: ignore[no-untyped-def]
    """The relaxation's inputs for ``market``: candidates, arrays, net value (EUR)."""
    arrays = market_arrays(market)
    cands = enumerate_candidates(market, arrays)
    return cands, arrays, cands.net_eur(market.config.carbon_price_eur_per_t)


@pytest.mark.parametrize("workers", [1, 2])  # 2: the relaxation is solved during the search
def test_search_path_prices_the_same_relaxation_as_pricing_from_scratch(
        market, workers: int) -> None:  # type: ignore[no-untyped-def]
    options = SolveOptions(time_limit_s=5, baselines=False, bound_iterations=50)
    whole = clear(market, options)
    search = clear(market, SolveOptions(time_limit_s=5, baselines=False, bound_iterations=50,
                                        whole_model_nonzeros=0, search_workers=workers))
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
    cands, arrays, net = _inputs(market)
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


def _times_out(calls: set[int]):  # type: ignore[no-untyped-def]
    """LpMaster.solve as HiGHS answers when its time limit stops a master: the calls
    numbered in ``calls`` (1-based) raise SolveTimeLimitError, the others solve for real.
    A real time-out is not reproducible on small masters, which HiGHS solves in
    milliseconds, so the stop is injected where HiGHS would report it."""
    real, seen = LpMaster.solve, [0]

    def solve(master: LpMaster, time_limit_s: float, method: str = "vertex"):  # type: ignore[no-untyped-def]
        seen[0] += 1
        if seen[0] in calls:
            raise SolveTimeLimitError("a master LP of the pricing step reached its time limit")
        return real(master, time_limit_s, method)  # type: ignore[arg-type]

    return solve


def test_a_master_stopped_by_its_time_limit_leaves_the_last_optimal_duals(
        market, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cands, arrays, net = _inputs(market)
    exact = Relaxation(cands, arrays, net, None).solve(60.0)
    relaxation = Relaxation(cands, arrays, net, None)
    monkeypatch.setattr(LpMaster, "solve", _times_out({2}))
    stopped = relaxation.solve(60.0)
    # The first master's duals, not converged; its LP is below the whole relaxation's.
    assert not stopped.converged and not relaxation.converged
    assert stopped.iterations == 2 and stopped.largest_reduced_profit_eur > 0
    assert 0 < stopped.lp_objective_eur <= exact.lp_objective_eur + 1e-6
    monkeypatch.undo()
    # Asked again, it goes on from there to the same optimum as from scratch.
    resumed = relaxation.solve(60.0)
    assert resumed.converged
    assert resumed.lp_objective_eur == pytest.approx(exact.lp_objective_eur, abs=1e-3)


def test_no_master_solved_in_time_is_an_error_for_the_relaxation_not_for_the_clearing(
        market, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cands, arrays, net = _inputs(market)
    monkeypatch.setattr(LpMaster, "solve", _times_out({1}))
    with pytest.raises(SolveTimeLimitError):
        Relaxation(cands, arrays, net, None).solve(60.0)
    # In a clearing with two search workers the first master is solved during the search:
    # the pricing step then goes on from there to exact prices.
    monkeypatch.setattr(LpMaster, "solve", _times_out({1}))
    cleared = clear(market, SolveOptions(time_limit_s=5, baselines=False, bound_iterations=50,
                                         whole_model_nonzeros=0, search_workers=2))
    assert cleared.report.method == "neighbourhood_search"
    assert cleared.pricing is not None and cleared.pricing.converged
    assert check_clearing(market, cleared.placements, cleared.rejected, cleared.summary(),
                          cleared.prices).ok


def test_the_time_the_relaxation_ran_alongside_the_search_counts_against_pricing_s_limit(
        market, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    asked: list[float] = []
    solve = Relaxation.solve

    def slow(relaxation: Relaxation, seconds: float, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(seconds)
        if len(asked) == 1:
            time.sleep(1.5)  # the alongside run: at least this long, whatever it solves
        return solve(relaxation, seconds, *args, **kwargs)

    monkeypatch.setattr(Relaxation, "solve", slow)
    cleared = clear(market, SolveOptions(time_limit_s=3, baselines=False, bound_iterations=50,
                                         whole_model_nonzeros=0, search_workers=2,
                                         pricing_time_limit_s=20.0))
    # Alongside: up to the search's budget; after: what is left of the 20 s, not 20 s again.
    assert len(asked) == 2 and asked[0] <= 3.0
    assert asked[1] <= 20.0 - 1.5
    assert cleared.pricing is not None and cleared.pricing.converged


def test_a_failure_of_the_relaxation_during_the_search_fails_the_clearing(
        market, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(master: LpMaster, time_limit_s: float, method: str = "vertex"):  # type: ignore[no-untyped-def]
        raise RuntimeError("HiGHS went away")

    monkeypatch.setattr(LpMaster, "solve", broken)
    with pytest.raises(RuntimeError, match="HiGHS went away") as failed:
        clear(market, SolveOptions(time_limit_s=3, baselines=False, bound_iterations=50,
                                   whole_model_nonzeros=0, search_workers=2))
    # Raised from the thread once the search is done, not only by the pricing step after.
    assert any(entry.name == "_solved_alongside" for entry in failed.traceback)


def test_an_interior_point_master_highs_cannot_certify_is_solved_by_crossover() -> None:
    # Found by tests/settlement/test_properties.py on HiGHS 1.16: without crossover, its
    # interior point ends this 4-column master "unknown" (at 5.4999999983), which failed the
    # clearing with "the pricing LP stopped with status kUnknown".
    cap = np.zeros((1, 9), dtype=np.int64)
    cap[0, :3] = 24  # one pool, 24 GPUs in hours 0-2, none after
    master = LpMaster(4, cap, None, None)
    master.add_columns(bid=np.array([2, 3, 0, 1]), pool=np.zeros(4, dtype=np.int64),
                       start=np.array([0, 0, 1, 0]), duration=np.array([1, 2, 1, 1]),
                       gpus=np.array([8, 16, 16, 8]), kg=np.zeros(4),
                       objective=np.array([1.0, 4.0, 1.0, 1.0]))
    objective, bid_duals, cap_duals, _, x = master.solve(10.0, "interior")
    # The 2-hour 16-GPU job (4 EUR) runs whole; hour 0's other 8 GPUs go to the two 8-GPU
    # jobs (one in all), hour 1's to half of the other 16-GPU job.
    assert objective == pytest.approx(5.5)
    assert x[1] == pytest.approx(1.0) and x[0] + x[3] == pytest.approx(1.0)
    assert x[2] == pytest.approx(0.5)
    # Strong duality: the row prices, and what each column earns over them at its bound of
    # 1, account for the whole objective.
    bid = np.array([2, 3, 0, 1])
    paid = np.array([8 * cap_duals[0, 0], 16 * (cap_duals[0, 0] + cap_duals[0, 1]),
                     16 * cap_duals[0, 1], 8 * cap_duals[0, 0]]) + bid_duals[bid]
    earned = np.maximum(np.array([1.0, 4.0, 1.0, 1.0]) - paid, 0.0).sum()
    assert float(cap_duals.ravel() @ cap.ravel() + bid_duals.sum() + earned) == (
        pytest.approx(5.5))


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_masters_reach_the_same_optimum_whether_simplex_takes_over_early_or_late(
        market, monkeypatch, share: float) -> None:  # type: ignore[no-untyped-def]
    # share 0: interior point until no column enters (the old path); share 1: a vertex after
    # the first round, then primal simplex from its basis while many columns still enter.
    cands, arrays, net = _inputs(market)
    reference = Relaxation(cands, arrays, net, None).solve(60.0)
    methods: list[str] = []
    real = LpMaster.solve

    def solve(master: LpMaster, time_limit_s: float, method: str = "vertex"):  # type: ignore[no-untyped-def]
        methods.append(method)
        return real(master, time_limit_s, method)  # type: ignore[arg-type]

    monkeypatch.setattr("optim.pricing.SIMPLEX_TAIL_SHARE", share)
    monkeypatch.setattr(LpMaster, "solve", solve)
    prices = Relaxation(cands, arrays, net, None).solve(60.0)
    assert prices.converged
    assert prices.lp_objective_eur == pytest.approx(reference.lp_objective_eur, abs=1e-3)
    if share == 0.0:
        first = methods.index("vertex")
        assert first >= 2 and set(methods[:first]) == {"interior"}
        assert methods.count("vertex") == 1
    else:
        assert methods[:2] == ["interior", "vertex"] and "simplex" in methods


def test_columns_idle_through_interior_masters_leave_it_and_the_optimum_stays(
        market, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cands, arrays, net = _inputs(market)
    reference = Relaxation(cands, arrays, net, None).solve(60.0)
    dropped: list[int] = []
    real = LpMaster.drop_columns

    def drop(master: LpMaster, positions: np.ndarray) -> None:
        dropped.append(int(positions.size))
        real(master, positions)

    # Drop as soon as a column is idle once, and stay with interior point to the end, so
    # that columns leave on this small market too.
    monkeypatch.setattr("optim.pricing.DROP_AFTER_ROUNDS", 1)
    monkeypatch.setattr("optim.pricing.SIMPLEX_TAIL_SHARE", 0.0)
    monkeypatch.setattr(LpMaster, "drop_columns", drop)
    relaxation = Relaxation(cands, arrays, net, None)
    prices = relaxation.solve(60.0)
    assert sum(dropped) > 0
    assert prices.converged
    assert prices.lp_objective_eur == pytest.approx(reference.lp_objective_eur, abs=1e-3)
    # The bookkeeping follows the master: the same columns, each once.
    assert relaxation.master.columns == relaxation.master_columns.size == prices.columns
    assert np.unique(relaxation.master_columns).size == relaxation.master_columns.size
    assert np.array_equal(np.sort(relaxation.master_columns), np.flatnonzero(relaxation.in_master))

"""HiGHS's model statuses map explicitly onto ours, and a process may change its threads."""

from __future__ import annotations

import highspy
import pytest

from optim.clearing import clear
from optim.options import USABLE, SolveOptions, SolveStatus, relative_gap
from optim.solver import map_status
from tests.optim.test_clearing import hand_market

S = highspy.HighsModelStatus


@pytest.mark.parametrize(("raw", "ours"), [
    (S.kOptimal, SolveStatus.OPTIMAL),
    (S.kTimeLimit, SolveStatus.TIME_LIMIT),
    (S.kIterationLimit, SolveStatus.ITERATION_LIMIT),
    (S.kSolutionLimit, SolveStatus.ITERATION_LIMIT),
    (S.kInterrupt, SolveStatus.INTERRUPTED),
    (S.kInfeasible, SolveStatus.INFEASIBLE),
    (S.kUnbounded, SolveStatus.UNBOUNDED),
    (S.kModelEmpty, SolveStatus.EMPTY),
    (S.kLoadError, SolveStatus.ERROR),
    (S.kPresolveError, SolveStatus.ERROR),
    (S.kMemoryLimit, SolveStatus.ERROR),
    (S.kNotset, SolveStatus.ERROR),
])
def test_map_status(raw: highspy.HighsModelStatus, ours: SolveStatus) -> None:
    assert map_status(raw) is ours


def test_only_results_with_an_incumbent_are_usable() -> None:
    assert SolveStatus.TIME_LIMIT in USABLE
    assert SolveStatus.ERROR not in USABLE and SolveStatus.INFEASIBLE not in USABLE


def test_relative_gap() -> None:
    assert relative_gap(100.0, 101.0) == pytest.approx(0.01)
    assert relative_gap(0.0, 0.5) == pytest.approx(0.5)  # 1 EUR floor on the denominator
    assert relative_gap(100.0, 99.0) == 0.0


def test_one_process_may_clear_with_different_thread_counts() -> None:
    # HiGHS sizes each calling thread's scheduler by its first run; before optim.solver
    # reset it, the second of these clearings stopped at once with status kNotset.
    market = hand_market().market()
    for threads in (1, 2, None, 1):
        c = clear(market, SolveOptions(threads=threads))
        assert c.report.method == "whole_model"
        assert c.report.highs_status == "kOptimal"
        assert c.pricing is not None and c.pricing.converged  # the LP master ran too
        assert c.totals.welfare_eur == pytest.approx(159.48)  # hand_market's optimum

"""Every call into HiGHS lives here: the Pyomo model through Pyomo's persistent HiGHS
interface (``pyomo.contrib.appsi``), the raw highspy build the benchmark compares it with, and
the restricted master LP of the pricing step (:class:`LpMaster`).

HiGHS's model status is mapped explicitly to :class:`optim.options.SolveStatus`, and the
status is checked before any value is read: a time-limit stop with an incumbent is a valid
result; a stop without one raises :class:`optim.errors.SolveError`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.appsi.solvers import Highs

from optim.errors import SolveError, SolveTimeLimitError
from optim.formulation import Formulation
from optim.model import chosen_of, set_values
from optim.options import SolveOptions, SolveStatus

_STATUS = {
    highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kTimeLimit: SolveStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kIterationLimit: SolveStatus.ITERATION_LIMIT,
    highspy.HighsModelStatus.kSolutionLimit: SolveStatus.ITERATION_LIMIT,
    highspy.HighsModelStatus.kObjectiveBound: SolveStatus.ITERATION_LIMIT,
    highspy.HighsModelStatus.kObjectiveTarget: SolveStatus.ITERATION_LIMIT,
    highspy.HighsModelStatus.kInterrupt: SolveStatus.INTERRUPTED,
    highspy.HighsModelStatus.kHighsInterrupt: SolveStatus.INTERRUPTED,
    highspy.HighsModelStatus.kModelEmpty: SolveStatus.EMPTY,
    highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: SolveStatus.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: SolveStatus.UNBOUNDED,
}


def map_status(status: highspy.HighsModelStatus) -> SolveStatus:
    """HiGHS's model status as ours; anything unlisted (load, presolve, memory…) is ERROR."""
    return _STATUS.get(status, SolveStatus.ERROR)


@dataclass(frozen=True, slots=True)
class SolverResult:
    """One HiGHS run: status, incumbent welfare and proven bound (EUR), chosen positions."""

    status: SolveStatus
    highs_status: str
    objective_eur: float
    bound_eur: float | None
    chosen: np.ndarray
    handover_s: float
    solve_s: float
    extract_s: float


_scheduler = threading.local()


def size_scheduler(threads: int | None) -> None:
    """Before a HiGHS run in this thread: let it use ``threads`` (None or 0: HiGHS's default).

    Why: HiGHS keeps one task scheduler per calling thread, sized by that thread's first run,
    and a later run there that asks for another number of threads fails at once with status
    kNotset (seen clearing with ``threads=1`` and then ``threads=2`` in one process).
    Resetting this thread's scheduler lets the next run size it anew; runs in other threads
    keep theirs.
    """
    wanted = int(threads or 0)
    if getattr(_scheduler, "threads", wanted) != wanted:
        highspy.Highs.resetThreadScheduler(True)
    _scheduler.threads = wanted


def _highs_options(options: SolveOptions) -> dict[str, object]:
    out: dict[str, object] = {"random_seed": int(options.seed), "output_flag": False}
    if options.threads:
        out["threads"] = int(options.threads)
    return out


class PyomoHighs:
    """A Pyomo clearing model held in HiGHS between solves (persistent: re-solves after a
    parameter change update coefficients instead of handing the whole model over again)."""

    def __init__(self, model: pyo.ConcreteModel, options: SolveOptions,
                 time_limit_s: float, mip_rel_gap: float) -> None:
        self.model = model
        self.opt = Highs()
        self.opt.config.load_solution = False
        self.opt.config.stream_solver = False
        self.opt.config.time_limit = max(float(time_limit_s), 0.01)
        self.opt.config.mip_gap = float(mip_rel_gap)
        self.opt.highs_options = _highs_options(options)
        self.threads = options.threads
        # Nothing but parameters ever changes after the hand-over: skip the other scans.
        update = self.opt.update_config
        update.check_for_new_or_removed_constraints = False
        update.check_for_new_or_removed_vars = False
        update.check_for_new_or_removed_params = False
        update.check_for_new_objective = False
        update.update_constraints = False
        update.update_vars = False
        update.update_named_expressions = False
        update.update_objective = False
        update.update_params = True
        started = time.perf_counter()
        self.opt.set_instance(model)
        self.handover_s = time.perf_counter() - started

    def solve(self, warm_start: np.ndarray | None) -> SolverResult:
        """Run HiGHS (from ``warm_start`` positions when given) and read the result back."""
        self.opt.config.warmstart = warm_start is not None
        if warm_start is not None:
            set_values(self.model, warm_start)
        size_scheduler(self.threads)
        started = time.perf_counter()
        results = self.opt.solve(self.model)
        solved = time.perf_counter()
        # Pyomo maps HiGHS's status to its own enum; we map HiGHS's own code explicitly.
        raw = self.opt._solver_model.getModelStatus()
        status = map_status(raw)
        if status not in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT,
                          SolveStatus.ITERATION_LIMIT, SolveStatus.INTERRUPTED):
            raise SolveError(f"HiGHS stopped with status {raw.name}; no clearing was produced. "
                             "Check the bundle with gridbridge market validate and report it")
        if results.best_feasible_objective is None:
            raise SolveError(
                f"HiGHS stopped ({raw.name}) before it found any feasible clearing; "
                "raise --time-limit"
            )
        results.solution_loader.load_vars()
        chosen = chosen_of(self.model)
        bound = results.best_objective_bound
        return SolverResult(
            status=status, highs_status=raw.name,
            objective_eur=float(results.best_feasible_objective),
            bound_eur=None if bound is None or not np.isfinite(bound) else float(bound),
            chosen=chosen, handover_s=self.handover_s, solve_s=solved - started,
            extract_s=time.perf_counter() - solved,
        )


def raw_highs_build(f: Formulation, carbon_price_eur_per_t: float) -> tuple[highspy.Highs, float]:
    """The same model passed straight from arrays to highspy; returns it and the seconds."""
    started = time.perf_counter()
    n = f.variables
    blocks = [f.one_per_bid, f.capacity]
    start = np.concatenate([b.start[:-1] + off for b, off in
                            zip(blocks, np.cumsum([0, blocks[0].nonzeros]), strict=True)])
    index = np.concatenate([b.index for b in blocks])
    coef = np.concatenate([b.coef for b in blocks])
    upper = np.concatenate([b.upper for b in blocks])
    if f.emissions_cap_kg is not None:
        start = np.r_[start, index.shape[0]]
        index = np.r_[index, np.arange(n)]
        coef = np.r_[coef, f.cands.emissions_kg]
        upper = np.r_[upper, f.emissions_cap_kg]
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, upper.shape[0]
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = f.objective(carbon_price_eur_per_t)
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.row_lower_, lp.row_upper_ = np.full(upper.shape[0], -highspy.kHighsInf), upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.r_[start, index.shape[0]].astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = coef
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    return h, time.perf_counter() - started


#: How :meth:`LpMaster.solve` solves a master (see there).
MasterMethod = Literal["interior", "vertex", "simplex"]


class LpMaster:
    """The restricted master LP of column generation (:mod:`optim.pricing`), in highspy.

    Rows, all ``<=`` with constants on the right so that in this maximisation every dual is
    >= 0 and reads as a price: one row per bid (at most one placement; its dual is the bid's
    LP surplus, EUR), one per (pool, hour) of capacity (dual EUR per GPU-hour), and the
    emissions cap when there is one (dual EUR per kg). Columns are candidates in [0, 1],
    added in batches. Pyomo is not used here: column generation adds columns to existing
    rows dozens of times, which Pyomo's persistent interface can only do by rebuilding rows.
    """

    def __init__(self, bids: int, capacity: np.ndarray, emissions_cap_kg: float | None,
                 threads: int | None) -> None:
        self.bids, self.threads = bids, threads
        self.pools, self.hours = capacity.shape
        self.cap_row0 = bids
        self.cap_row = None if emissions_cap_kg is None else bids + capacity.size
        upper = np.r_[np.ones(bids), capacity.ravel().astype(float)]
        if emissions_cap_kg is not None:
            upper = np.r_[upper, float(emissions_cap_kg)]
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if threads:
            h.setOptionValue("threads", int(threads))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        h.addRows(upper.size, np.full(upper.size, -highspy.kHighsInf), upper, 0,
                  np.zeros(1, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        self.h = h
        self.columns = 0

    def add_columns(self, bid: np.ndarray, pool: np.ndarray, start: np.ndarray,
                    duration: np.ndarray, gpus: np.ndarray, kg: np.ndarray,
                    objective: np.ndarray) -> None:
        """Add candidates as columns: a 1 in their bid's row, ``gpus`` in each capacity row
        of the hours they run, their kg in the emissions row."""
        n = bid.size
        if n == 0:
            return
        col = np.repeat(np.arange(n), duration)
        hour = start[col] + np.arange(col.size) - np.repeat(np.cumsum(duration) - duration,
                                                             duration)
        cols = [np.arange(n), col]
        rows = [bid, self.cap_row0 + pool[col] * self.hours + hour]
        vals = [np.ones(n), gpus[col].astype(float)]
        if self.cap_row is not None:
            cols.append(np.arange(n))
            rows.append(np.full(n, self.cap_row))
            vals.append(kg.astype(float))
        c, r, v = np.concatenate(cols), np.concatenate(rows), np.concatenate(vals)
        order = np.lexsort((r, c))
        c, r, v = c[order], r[order], v[order]
        starts = np.searchsorted(c, np.arange(n)).astype(np.int32)
        self.h.addCols(n, objective.astype(float), np.zeros(n), np.ones(n), r.size, starts,
                       r.astype(np.int32), v)
        self.columns += n

    def drop_columns(self, positions: np.ndarray) -> None:
        """Delete the columns at these positions (0-based, in the master's current order);
        the columns after them move up."""
        if positions.size:
            self.h.deleteCols(int(positions.size), positions.astype(np.int32))
            self.columns -= int(positions.size)

    def solve(self, time_limit_s: float, method: MasterMethod = "vertex") -> tuple[
            float, np.ndarray, np.ndarray, float, np.ndarray]:
        """Solve; returns (objective EUR, bid duals, capacity duals (P, H), emissions dual,
        column values). Raises SolveTimeLimitError when the time limit stops it, SolveError
        on any other status but optimal.

        ``method``: ``"interior"`` returns the interior point's optimal solution as it is
        (cheap, and its central duals serve column generation well); ``"vertex"`` adds
        crossover to a basic solution, whose duals are the published prices; ``"simplex"``
        resumes primal simplex from the last basis (after a vertex solve, a few added columns
        cost a few pivots instead of another interior-point solve).
        """
        # Interior point by default: the columns are dense (a job's every hour), and
        # measured on the final master at L (25,759 columns) it solved in 12.6 s from
        # scratch against 29 s for dual and 92 s for primal simplex; re-solving by primal
        # simplex from the last basis took 129 s over column generation against 55 s.
        if method == "simplex":
            self.h.setOptionValue("solver", "simplex")
            self.h.setOptionValue("simplex_strategy", 4)
        else:
            self.h.setOptionValue("solver", "ipm")
            self.h.setOptionValue("run_crossover", "on" if method == "vertex" else "off")
        # HiGHS measures its time limit on the instance's run clock, which keeps counting
        # across runs: the limit is set past what earlier rounds used.
        self.h.setOptionValue("time_limit",
                              self.h.getRunTime() + max(float(time_limit_s), 0.01))
        size_scheduler(self.threads)
        self.h.run()
        raw = self.h.getModelStatus()
        if raw == highspy.HighsModelStatus.kUnknown and method == "interior":
            # Without crossover HiGHS 1.16's interior point can end "unknown" at a solution it
            # could not certify (seen on a 4-column master from the property tests, at
            # 5.4999999983 of 5.5); crossover from that point certifies it.
            self.h.setOptionValue("run_crossover", "on")
            self.h.run()
            raw = self.h.getModelStatus()
        if raw == highspy.HighsModelStatus.kTimeLimit:
            raise SolveTimeLimitError(
                f"a master LP of the pricing step reached its time limit ({time_limit_s:g} s); "
                "raise --pricing-time-limit so the LP relaxation can be solved")
        if raw != highspy.HighsModelStatus.kOptimal:
            raise SolveError(f"the pricing LP stopped with status {raw.name}; check the bundle "
                             "with gridbridge market validate and report it")
        sol = self.h.getSolution()
        # Duals of <= rows in a maximisation are >= 0; clip round-off below zero.
        dual = np.maximum(np.asarray(sol.row_dual, dtype=float), 0.0)
        caps = dual[self.cap_row0:self.cap_row0 + self.pools * self.hours]
        emissions = 0.0 if self.cap_row is None else float(dual[self.cap_row])
        return (float(self.h.getInfo().objective_function_value), dual[:self.bids],
                caps.reshape(self.pools, self.hours), emissions,
                np.asarray(sol.col_value, dtype=float))

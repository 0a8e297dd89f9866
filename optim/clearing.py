"""``clear(market, options) -> Clearing``: the whole clearing of one market round.

Phases (each timed, wall seconds): enumerate candidates; baselines; the Lagrangian bound
(:mod:`optim.bound`) and greedy warm starts; then one of two methods:

* ``whole_model`` — the Pyomo model of every profitable candidate (:mod:`optim.model`),
  handed to HiGHS once and solved from the warm start (:mod:`optim.solver`). Used when the
  model has at most ``SolveOptions.whole_model_nonzeros`` non-zeros: HiGHS proves optimality
  of such models quickly, and spends its whole time limit in presolve on much larger ones.
* ``neighbourhood_search`` — for larger markets: the warm start is improved by re-solving
  small exact Pyomo/HiGHS models of a few pools at a time (:mod:`optim.lns`) until the time
  limit, where freed bids may first move only to the places the bound's prices value most
  (their best by reduced profit). When the search has several worker processes, the
  pricing step's LP relaxation (:class:`optim.pricing.Relaxation`) is solved by column
  generation in a thread of this process meanwhile, and kept for the pricing step.

Candidates whose net value is <= 0 at the carbon price are never modelled: dropping one from
any clearing keeps it feasible and does not lower welfare, so the optimum is unchanged and
nothing is restricted. ``bound_eur`` is valid for the whole market either way: the
Lagrangian bound over every candidate, or HiGHS's proven bound on the whole model where it is
lower.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from optim.accounting import Totals, totals
from optim.bound import LagrangianBound, lagrangian_bound, reduced_profit
from optim.candidates import (
    Candidates,
    MarketArrays,
    allowed_pools,
    enumerate_candidates,
    market_arrays,
)
from optim.errors import MarketInputError, SolveTimeLimitError
from optim.formulation import formulate
from optim.greedy import carbon_aware_greedy, carbon_blind_greedy, ordered_greedy
from optim.lns import improve, search_workers
from optim.market import Market
from optim.model import build_model
from optim.options import (
    DEFAULT_MIP_REL_GAP,
    DEFAULT_PRICING_TIME_LIMIT_S,
    DEFAULT_TIME_LIMIT_S,
    ModelSize,
    SolveOptions,
    SolveReport,
    SolveStatus,
    relative_gap,
)
from optim.pricing import (
    Prices,
    Relaxation,
    best_per_bid,
    lost_opportunity,
    payments,
    relaxation_prices,
)
from optim.reasons import rejection_reasons
from optim.solver import PyomoHighs, SolverResult

BASELINES = ("carbon_blind_greedy", "carbon_aware_greedy")
#: Multiples of the Lagrangian prices tried when ranking candidates for the warm start.
PRICE_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)
#: Share of the time limit the Lagrangian bound may take (seconds, at least 2). At XL it
#: takes all of it (153 s at --time-limit 300); at L it converges in about 12 s (at
#: --time-limit 60 and 280), at M in about 3.4 s (make bench).
BOUND_SHARE = 0.5
#: Candidates per bid the neighbourhood search may use at first, best by reduced profit
#: (:meth:`Round._search_columns`); measured at L over 120 s (ranked by the LP's duals then):
#: 10 gained 1.1 %, 30 gained 1.5 %.
SEARCH_COLUMNS_PER_BID = 30
Progress = Callable[[str], None]

PLACEMENT_SCHEMA = {
    "bid_id": pl.String, "member": pl.String, "site_id": pl.String, "gpu_type": pl.String,
    "start_utc": pl.Datetime("us", "UTC"), "end_utc": pl.Datetime("us", "UTC"),
    "gpus": pl.Int64, "energy_kwh": pl.Float64, "emissions_kg": pl.Float64,
    "energy_cost_eur": pl.Float64, "ask_eur": pl.Float64, "carbon_fee_eur": pl.Float64,
    "capacity_eur": pl.Float64, "value_eur": pl.Float64, "payment_eur": pl.Float64,
    "uplift_eur": pl.Float64,
}
PRICE_SCHEMA = {
    "site_id": pl.String, "gpu_type": pl.String, "hour_utc": pl.Datetime("us", "UTC"),
    "capacity_price_eur_per_gpu_hour": pl.Float64,
}


@dataclass(frozen=True, slots=True)
class Clearing:
    """The outcome of one clearing: decisions, figures, baselines, the solve report and prices.

    ``placements`` has DESIGN.md's columns plus ``member``, ``ask_eur``, ``carbon_fee_eur``,
    ``capacity_eur``, ``value_eur`` and ``uplift_eur`` (EUR, whole job; the money columns
    after ``carbon_fee_eur`` are empty when pricing was not run); ``rejected`` has
    ``bid_id``, ``reason``, ``detail`` and ``lost_opportunity_eur`` (> 0: rejected
    paradoxically, :mod:`optim.pricing`). ``prices`` has prices.csv's columns (empty without
    pricing).
    """

    placements: pl.DataFrame
    rejected: pl.DataFrame
    prices: pl.DataFrame
    pricing: Prices | None
    report: SolveReport
    totals: Totals
    baselines: dict[str, Totals]
    carbon_price_eur_per_t: float
    carbon_signal: str
    emissions_cap_kg: float | None
    window_start_utc: datetime
    window_end_utc: datetime

    def summary(self) -> dict[str, object]:
        """summary.json's content: deterministic (no wall-clock figures)."""
        r = self.report
        by_reason = self.rejected.group_by("reason").len().sort("reason")
        return {
            "status": r.status.value,
            "highs_status": r.highs_status,
            "objective_eur": _r(r.objective_eur),
            "bound_eur": _r(r.bound_eur),
            "gap": _r(r.gap, 9),
            "highs_bound_eur": None if r.highs_bound_eur is None else _r(r.highs_bound_eur),
            "lagrangian_bound_eur": (None if r.lagrangian_bound_eur is None
                                     else _r(r.lagrangian_bound_eur)),
            "carbon_price_eur_per_t": self.carbon_price_eur_per_t,
            "carbon_signal": self.carbon_signal,
            "emissions_cap_kg": self.emissions_cap_kg,
            "window_start_utc": f"{self.window_start_utc:%Y-%m-%dT%H:%MZ}",
            "window_end_utc": f"{self.window_end_utc:%Y-%m-%dT%H:%MZ}",
            "bids": self.totals.accepted + self.totals.rejected,
            **_rounded(self.totals),
            "rejected_by_reason": dict(by_reason.iter_rows()),
            "model": {"candidates": r.candidates, "variables": r.size.variables,
                      "constraints": r.size.constraints, "nonzeros": r.size.nonzeros},
            "method": r.method,
            "neighbourhoods": r.neighbourhoods,
            "restricted": list(r.restrictions),
            "warm_start": {"heuristic": r.warm_start, "welfare_eur": _r(r.warm_start_eur)},
            "seed": r.seed,
            "baselines": {name: _rounded(t) for name, t in self.baselines.items()},
            "pricing": self._pricing_summary(),
        }

    def _pricing_summary(self) -> dict[str, object] | None:
        """The pricing step's figures (EUR): what bids pay, uplift, paradoxical rejections,
        and the congestion revenue (capacity prices collected, all passed on to sites)."""
        if self.pricing is None:
            return None
        p, pl_ = self.pricing, self.placements
        lost = self.rejected.filter(pl.col("lost_opportunity_eur") > 0)
        return {
            "method": "lp_relaxation_column_generation",
            "lp_objective_eur": _r(p.lp_objective_eur),
            "converged": p.converged,
            "largest_reduced_profit_eur": _r(p.largest_reduced_profit_eur),
            "iterations": p.iterations,
            "columns": p.columns,
            "emissions_price_eur_per_kg": _r(p.emissions_eur_per_kg, 9),
            "payments_eur": _r(pl_["payment_eur"].sum()),
            "charges_eur": _r(pl_["payment_eur"].sum() + pl_["uplift_eur"].sum()),
            "uplift_eur": _r(pl_["uplift_eur"].sum()),
            "bids_with_uplift": int((pl_["uplift_eur"] > 0).sum()),
            "congestion_revenue_eur": _r(pl_["capacity_eur"].sum()),
            "carbon_fees_eur": _r(pl_["carbon_fee_eur"].sum()),
            "paradoxically_rejected": lost.height,
            "paradoxically_rejected_value_eur": _r(lost["lost_opportunity_eur"].sum()),
        }

    def timings(self) -> dict[str, float]:
        """timings.json's content: wall seconds per phase."""
        return {f"{k}_s": round(v, 4) for k, v in self.report.seconds.items()}


def _r(x: float, digits: int = 6) -> float:
    return round(float(x), digits)


def _rounded(t: Totals) -> dict[str, object]:
    return {k: v if isinstance(v, int) else _r(v) for k, v in t.as_dict().items()}


@dataclass
class _Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - started
        return now


@contextmanager
def _solved_alongside(relaxation: Relaxation | None, seconds: float, seed: np.ndarray,
                      rank: np.ndarray, timer: _Timer) -> Iterator[None]:
    """Run column generation on ``relaxation`` (for up to ``seconds``, from ``seed`` and
    ``rank``) in a thread while the body runs, and wait for it after; its wall seconds go
    to the ``pricing`` phase, so phases may sum to more than the wall time. A no-op when
    ``relaxation`` is None.

    Why a thread: the search's neighbourhoods are solved in worker processes, and this
    process mostly waits for them; HiGHS releases the GIL while it solves a master (two
    5.4 s LPs in two threads took 5.65 s). At L the relaxation takes about 26 s (make bench),
    which the search used to wait for; these seconds count against pricing's time limit.
    When no master is solved in time, the pricing step goes on from there, as it would after
    a master stopped by its time limit.
    """
    if relaxation is None:
        yield
        return
    failed: list[BaseException] = []

    def solve() -> None:
        started = time.perf_counter()
        try:
            # No master may outlast the search: at XL one master takes minutes.
            relaxation.solve(seconds, seed=seed, rank=rank, master_floor_s=0.0)
        except SolveTimeLimitError:
            pass  # no master solved in time: the pricing step starts from this one
        except BaseException as exc:  # raised again in the clearing's own thread
            failed.append(exc)
        finally:
            timer.add("pricing", started)

    # A daemon: should the search fail, the process need not wait for the relaxation.
    thread = threading.Thread(target=solve, name="lp-relaxation", daemon=True)
    thread.start()
    yield
    thread.join()
    if failed:
        raise failed[0]


class Round:
    """A market prepared for clearing: its arrays and candidates, and (after the first solve)
    the Pyomo model held in HiGHS, so that solving again at another carbon price re-uses it.
    """

    def __init__(self, market: Market, options: SolveOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.market = market
        self.options = options or SolveOptions()
        self.progress = progress or (lambda _msg: None)
        started = time.perf_counter()
        self.arrays: MarketArrays = market_arrays(market)
        self.cands: Candidates = enumerate_candidates(market, self.arrays)
        allowed = allowed_pools(market, self.arrays)
        types = market.bid_options.group_by("bid_id").agg(pl.col("gpu_type"))
        option_types = dict(zip(types["bid_id"], types["gpu_type"], strict=True))
        self.has_pool = np.array([
            any(self.arrays.pool_type[p] in option_types.get(b, []) for p in allowed[b])
            for b in self.arrays.bid_ids
        ])
        self.member_of = dict(zip(market.bids["bid_id"], market.bids["member"], strict=True))
        self.prepare_s = time.perf_counter() - started
        self._model_price: float | None = None
        self._modelled = np.zeros(0, dtype=np.int64)  # candidate indices the model holds
        self._solver: PyomoHighs | None = None
        self._size = ModelSize(0, 0, 0)

    def limits(self) -> tuple[float, float]:
        """HiGHS's time limit (s) and relative gap: options, else market.toml, else defaults."""
        cfg = self.market.config
        limit = self.options.time_limit_s or cfg.time_limit_s or DEFAULT_TIME_LIMIT_S
        gap = self.options.mip_rel_gap
        if gap is None:
            gap = cfg.mip_rel_gap if cfg.mip_rel_gap is not None else DEFAULT_MIP_REL_GAP
        return float(limit), float(gap)

    def _heuristics(self, net: np.ndarray, idx: np.ndarray, prices: LagrangianBound | None,
                    cap_kg: float | None) -> tuple[str, np.ndarray]:
        """The best greedy clearing over candidates ``idx``: (name, candidate indices)."""
        sub = self.cands.subset(idx)
        sub_net = net[idx]
        orders = {"value_density_greedy": np.argsort(-(sub_net / (sub.gpus * sub.duration)),
                                                     kind="stable")}
        if prices is not None:
            # The prices rank candidates; scaled copies often pack better than the exact ones.
            for scale in PRICE_SCALES:
                rp = reduced_profit(sub, sub_net, prices.scaled(scale))
                orders[f"lagrangian_priced_greedy_x{scale:g}"] = np.argsort(-rp, kind="stable")
        if cap_kg is not None:
            orders["low_carbon_greedy"] = np.argsort(sub.emissions_kg / sub_net, kind="stable")
        best = ("none", np.zeros(0, dtype=np.int64), 0.0)
        for name, order in orders.items():
            chosen = ordered_greedy(sub, self.arrays, order, sub_net, cap_kg)
            welfare = float(sub_net[chosen].sum())
            if welfare > best[2]:
                best = (name, idx[chosen], welfare)
        return best[0], best[1]

    def _bound_and_warm_start(
        self, net: np.ndarray, positive: np.ndarray, cap_kg: float | None, limit: float,
        timer: _Timer, started: float,
    ) -> tuple[LagrangianBound, str, np.ndarray]:
        """The Lagrangian bound, and the best greedy clearing found on the way (its name and
        candidate indices): plain greedies, greedies at the prices every few subgradient
        steps, and greedies at scaled final prices."""
        arrays = self.arrays
        best: list[tuple[float, str, np.ndarray]] = []
        name, first = self._heuristics(net, positive, None, cap_kg)
        best.append((float(net[first].sum()), name, first))
        sub, sub_net = self.cands.subset(positive), net[positive]

        def priced(prices: LagrangianBound) -> float:
            # The Lagrangian heuristic: greedy in order of reduced profit at these prices.
            order = np.argsort(-reduced_profit(sub, sub_net, prices), kind="stable")
            chosen = positive[ordered_greedy(sub, arrays, order, sub_net, cap_kg)]
            best.append((float(net[chosen].sum()), f"lagrangian_greedy_step{prices.iterations}",
                         chosen))
            return best[-1][0]

        bound = lagrangian_bound(
            sub, arrays, sub_net, emissions_cap_kg=cap_kg, target_eur=best[0][0],
            iterations=self.options.bound_iterations, heuristic=priced,
            seconds=max(BOUND_SHARE * limit, 2.0))
        started = timer.add("bound", started)
        name, last = self._heuristics(net, positive, bound, cap_kg)
        best.append((float(net[last].sum()), name, last))
        _, warm_name, warm = max(best, key=lambda b: b[0])
        timer.add("warm_start", started)
        return bound, warm_name, warm

    def clear(self, carbon_price_eur_per_t: float | None = None,
              emissions_cap_kg: float | None = None) -> Clearing:
        """Clear the round at a carbon price (default: options, then market.toml)."""
        cfg = self.market.config
        price = carbon_price_eur_per_t
        if price is None:
            price = self.options.carbon_price_eur_per_t
        if price is None:
            price = cfg.carbon_price_eur_per_t
        if not price >= 0:
            raise MarketInputError("carbon price must be >= 0 EUR per tonne CO2eq")
        if emissions_cap_kg is not None and not emissions_cap_kg >= 0:
            raise MarketInputError("emissions cap must be >= 0 kg CO2eq")
        timer = _Timer({"candidates": self.prepare_s if self._solver is None else 0.0})
        cands, arrays = self.cands, self.arrays
        net = cands.net_eur(price)

        started = time.perf_counter()
        baselines: dict[str, Totals] = {}
        if self.options.baselines:
            self.progress("baselines")
            baselines = {
                "carbon_blind_greedy": totals(cands, carbon_blind_greedy(cands, arrays),
                                              arrays, price),
                "carbon_aware_greedy": totals(cands, carbon_aware_greedy(cands, arrays, price),
                                              arrays, price),
            }
        started = timer.add("baselines", started)

        self.progress("bound")
        solve_started = time.perf_counter()  # the time limit covers bound, warm start, search
        positive = np.flatnonzero(net > 0)
        limit, gap = self.limits()
        bound, warm_name, warm = self._bound_and_warm_start(net, positive, emissions_cap_kg,
                                                            limit, timer, started)
        started = time.perf_counter()

        size, neighbourhoods = ModelSize(0, 0, 0), 0
        highs_bound: float | None = None
        relaxation: Relaxation | None = None
        if positive.size == 0:
            # Nothing can add welfare: rejecting every bid is optimal, no model is needed.
            method, status, highs_status, chosen = "none", SolveStatus.EMPTY, "not run", warm
        elif (self.cands.duration[positive] + 1).sum() <= self.options.whole_model_nonzeros:
            method = "whole_model"
            result, size = self._solve_whole(price, emissions_cap_kg, net, warm, timer, started)
            status, highs_status, highs_bound = result.status, result.highs_status, result.bound_eur
            chosen = positive_chosen = self._modelled[result.chosen]
            if float(net[positive_chosen].sum()) < float(net[warm].sum()) - 1e-6:
                chosen = warm  # HiGHS may stop before re-finding its warm start's quality
        else:
            method = "neighbourhood_search"
            lagrangian_rank = np.where(net > 0, reduced_profit(cands, net, bound), -np.inf)
            budget = max(limit - (time.perf_counter() - solve_started), 1.0)
            alongside = (self.options.pricing
                         and search_workers(self.options, emissions_cap_kg) > 1)
            if alongside:
                relaxation = Relaxation(cands, arrays, net, emissions_cap_kg,
                                        self.options.threads)
            self.progress(f"neighbourhood search (time limit {limit:g} s)"
                          + (" and the LP relaxation" if alongside else ""))
            lp_s = min(self.options.pricing_time_limit_s or DEFAULT_PRICING_TIME_LIMIT_S,
                       budget)
            with _solved_alongside(relaxation, lp_s, warm, lagrangian_rank, timer):
                chosen, stats = improve(cands, arrays, net, warm, self.options, price,
                                        emissions_cap_kg, budget, rank=lagrangian_rank,
                                        allowed=self._search_columns(net, lagrangian_rank,
                                                                     warm))
            timer.seconds.update(build=stats.build_s, handover=stats.handover_s,
                                 solve=stats.solve_s)
            size, neighbourhoods = stats.largest, stats.neighbourhoods
            level = stats.level
            grown = (f"; {stats.grown} grown up to {level.pools} pools over {level.window_h} h,"
                     f" {stats.grown_improvements} better, {stats.grown_gain_eur:+,.0f} EUR"
                     if level is not None else "")
            highs_status = (f"{stats.neighbourhoods} neighbourhoods on {stats.workers} worker(s),"
                            f" {stats.improvements} better"
                            f" ({stats.wide} with any moves, {stats.wide_improvements} better"
                            f"{grown}); {stats.relocated} bids moved to better places,"
                            f" {stats.filled} filled in")
        started = time.perf_counter()
        objective = float(net[chosen].sum())
        valid = bound.bound_eur if highs_bound is None else min(bound.bound_eur, highs_bound)
        valid = max(valid, objective)
        if method == "neighbourhood_search":
            status = (SolveStatus.OPTIMAL if relative_gap(objective, valid) <= gap
                      else SolveStatus.TIME_LIMIT)

        placements = self._placements(chosen, price)
        room = None if emissions_cap_kg is None else emissions_cap_kg - float(
            cands.emissions_kg[chosen].sum())
        rejected = rejection_reasons(cands, arrays, chosen, net, self.has_pool,
                                     cfg.window_start_utc, room)
        started = timer.add("reasons", started)
        prices: Prices | None = None
        if self.options.pricing:
            self.progress("pricing (LP relaxation)")
            seconds = self.options.pricing_time_limit_s or DEFAULT_PRICING_TIME_LIMIT_S
            if relaxation is not None:
                # Solved during the search; a converged one already has its prices. The
                # seconds it ran alongside count against pricing's limit: at XL it went on
                # for the whole limit again after the search (950 s wall at --time-limit
                # 300, of which 761 s pricing).
                prices = relaxation.solve(
                    max(seconds - timer.seconds.get("pricing", 0.0), 0.0),
                    seed=None if relaxation.converged else chosen)
            else:
                # The bound's prices pick each bid's first columns: at L that halves the
                # rounds.
                prices = relaxation_prices(cands, arrays, net, emissions_cap_kg,
                                           seed=chosen, seconds=seconds,
                                           threads=self.options.threads,
                                           rank=reduced_profit(cands, net, bound))
        placements, rejected = self._priced(placements, rejected, chosen, prices, price)
        timer.add("pricing", started)
        report = SolveReport(
            status=status, highs_status=highs_status, objective_eur=objective,
            bound_eur=valid, highs_bound_eur=highs_bound,
            lagrangian_bound_eur=bound.bound_eur, gap=relative_gap(objective, valid),
            size=size, candidates=len(cands), seconds=timer.seconds, method=method,
            neighbourhoods=neighbourhoods, warm_start=warm_name,
            warm_start_eur=float(net[warm].sum()), seed=self.options.seed,
        )
        return Clearing(
            placements=placements, rejected=rejected, prices=self._price_table(prices),
            pricing=prices, report=report,
            totals=totals(cands, chosen, arrays, price), baselines=baselines,
            carbon_price_eur_per_t=float(price), carbon_signal=cfg.carbon_signal,
            emissions_cap_kg=emissions_cap_kg, window_start_utc=cfg.window_start_utc,
            window_end_utc=cfg.window_end_utc,
        )

    def _search_columns(self, net: np.ndarray, rank: np.ndarray,
                        warm: np.ndarray) -> np.ndarray:
        """Where the neighbourhood search's first phase may move bids (a mask over
        candidates): each bid's ``SEARCH_COLUMNS_PER_BID`` best by ``rank`` (reduced profit
        at the bound's prices), and the warm start's placements.

        Why: at L a neighbourhood over every candidate is too big for HiGHS to improve in
        its time limit (measured: 104 neighbourhoods in 200 s gained 0.5 %); restricted to
        the places the LP finds worth it, the same search gained 1.5 % in 120 s. Ranked by
        the Lagrangian bound's prices instead of the LP's duals, the restriction is as good
        and needs no LP first (at L, 150 s from the same warm start, two runs each:
        1,259,143 and 1,258,263 EUR against 1,259,340 and 1,258,033). Only the search is
        restricted: the bound stays the Lagrangian bound over every candidate.
        """
        best = best_per_bid(self.cands.bid, rank, np.flatnonzero(net > 0),
                            SEARCH_COLUMNS_PER_BID)
        allowed = np.zeros(len(self.cands), dtype=bool)
        allowed[best] = True
        allowed[warm] = True
        return allowed

    def _solve_whole(self, price: float, emissions_cap_kg: float | None, net: np.ndarray,
                     warm: np.ndarray, timer: _Timer,
                     started: float) -> tuple[SolverResult, ModelSize]:
        """Build (or re-use, at a higher carbon price) the whole model and run HiGHS."""
        cands, arrays = self.cands, self.arrays
        if self._solver is not None and (self._model_price is None or price < self._model_price
                                         or emissions_cap_kg is not None):
            self._solver = None  # the held model may lack candidates profitable at this price
        if self._solver is None:
            self.progress("build")
            self._modelled = np.flatnonzero(net > 0)
            f = formulate(cands.subset(self._modelled), arrays, emissions_cap_kg)
            model = build_model(f, price)
            self._size = ModelSize(f.variables, f.constraints, f.nonzeros)
            timer.add("build", started)
            limit, gap = self.limits()
            self._solver = PyomoHighs(model, self.options, limit, gap)
            self._model_price = price
            timer.seconds["handover"] = self._solver.handover_s
        else:
            self._solver.model.carbon_price.set_value(price)
            timer.seconds["build"] = timer.seconds["handover"] = 0.0
        modelled = self._modelled
        position = np.full(len(cands), -1, dtype=np.int64)
        position[modelled] = np.arange(modelled.size)
        warm = warm[position[warm] >= 0]  # a model built at a lower price holds every one
        limit, _ = self.limits()
        self.progress(f"solve (HiGHS, time limit {limit:g} s)")
        result = self._solver.solve(position[warm])
        timer.seconds["solve"] = result.solve_s
        timer.seconds["extract"] = result.extract_s
        return result, self._size

    def _placements(self, chosen: np.ndarray, price: float) -> pl.DataFrame:
        c, a = self.cands.subset(chosen), self.arrays
        start = self.market.config.window_start_utc
        return pl.DataFrame({
            "bid_id": [a.bid_ids[b] for b in c.bid],
            "member": [self.member_of[a.bid_ids[b]] for b in c.bid],
            "site_id": [a.pool_site[p] for p in c.pool],
            "gpu_type": [a.pool_type[p] for p in c.pool],
            "start_utc": [start + timedelta(hours=int(s)) for s in c.start],
            "end_utc": [start + timedelta(hours=int(s + d)) for s, d in zip(c.start, c.duration,
                                                                            strict=True)],
            "gpus": c.gpus,
            "energy_kwh": c.energy_kwh,
            "emissions_kg": c.emissions_kg,
            "energy_cost_eur": c.energy_cost_eur,
            "ask_eur": c.ask_eur,
            "carbon_fee_eur": price * c.emissions_kg / 1000.0,
            "capacity_eur": [None] * len(c),
            "value_eur": c.value_eur,
            "payment_eur": [None] * len(c),
            "uplift_eur": [None] * len(c),
        }, schema=PLACEMENT_SCHEMA).sort("bid_id")

    def _priced(self, placements: pl.DataFrame, rejected: pl.DataFrame, chosen: np.ndarray,
                prices: Prices | None, carbon_price: float) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Fill the placements' payments and the rejected bids' lost opportunity."""
        a = self.arrays
        if prices is None:
            return placements, rejected.with_columns(
                lost_opportunity_eur=pl.lit(None, dtype=pl.Float64))
        order = np.argsort([a.bid_ids[b] for b in self.cands.bid[chosen]], kind="stable")
        pay = payments(self.cands.subset(chosen[order]), prices, carbon_price)
        placements = placements.with_columns(
            capacity_eur=pay.capacity_eur, payment_eur=pay.payment_eur,
            uplift_eur=pay.uplift_eur)
        accepted = np.zeros(len(a.bid_ids), dtype=bool)
        accepted[self.cands.bid[chosen]] = True
        lost = lost_opportunity(self.cands, len(a.bid_ids), accepted, prices, carbon_price)
        by_id = pl.DataFrame({"bid_id": a.bid_ids, "lost_opportunity_eur": lost},
                             schema={"bid_id": pl.String, "lost_opportunity_eur": pl.Float64})
        return placements, rejected.join(by_id, on="bid_id", how="left")

    def _price_table(self, prices: Prices | None) -> pl.DataFrame:
        """prices.csv's rows: one per (site, GPU type, hour) of the window."""
        a = self.arrays
        if prices is None:
            return pl.DataFrame(schema=PRICE_SCHEMA)
        start = self.market.config.window_start_utc
        hours = [start + timedelta(hours=h) for h in range(a.hours)]
        return pl.DataFrame({
            "site_id": np.repeat(a.pool_site, a.hours).tolist(),
            "gpu_type": np.repeat(a.pool_type, a.hours).tolist(),
            "hour_utc": hours * a.pools,
            "capacity_price_eur_per_gpu_hour": prices.capacity_eur_per_gpu_hour.ravel(),
        }, schema=PRICE_SCHEMA).sort("site_id", "gpu_type", "hour_utc")


def clear(market: Market, options: SolveOptions | None = None,
          progress: Progress | None = None) -> Clearing:
    """Clear one market round (see the module docstring)."""
    options = options or SolveOptions()
    return Round(market, options, progress).clear(options.carbon_price_eur_per_t,
                                                  options.emissions_cap_kg)


__all__ = ["BASELINES", "Clearing", "Round", "clear"]

"""Pricing, the step after the clearing: capacity prices from the LP relaxation of the round's
clearing problem, each accepted bid's payment, and the bids rejected paradoxically.

**Prices.** The LP relaxation is the clearing problem with every placement binary relaxed to
[0, 1]: maximise Σ net_c x_c subject to, for every bid, Σ x_c <= 1; for every (pool, hour),
Σ gpus_c x_c over the candidates running then <= GPUs available; and the emissions cap when
there is one. Every row is ``<=`` with its constant on the right, so in this maximisation
every dual is >= 0 and reads directly as a price: the capacity row's dual is the
**capacity price** in EUR per GPU-hour of that (site, GPU type, hour) — what one more GPU
there for that hour would add to the relaxed welfare (the convex-hull style pricing of
electricity markets, MISO's ELMP, Prescient's relaxed pricing run). We do not use "fix the
integers and re-solve": every decision here is a placement binary, so with all of them fixed
nothing is free and the capacity duals are degenerate (zero or arbitrary).

The relaxation has one column per candidate placement (millions of non-zeros at the L size),
so it is solved by **column generation**: a restricted master LP (:class:`optim.solver.LpMaster`)
starts from the clearing's own placements (or its warm start, when the clearing solves it
before its search) and each bid's best few candidates, and every round adds, per bid, the
best few candidates whose reduced profit at the master's duals is positive (net − Σ gpus ×
capacity price − emissions price × kg − the bid's dual). When none is left the master's
duals are optimal for the whole relaxation. Masters are solved by interior point while
many columns enter, then once to a vertex and from its basis by primal simplex; the last
vertex's duals are the prices published. Columns that sit at zero, well short of paying
their way, through two interior-point masters in a row leave the master (they may price in
again), which keeps the masters small at XL. A time
limit may stop it earlier; ``converged`` then says so and ``largest_reduced_profit_eur`` how
far from optimal it is.

**Payments** (EUR, for the whole job). An accepted bid is charged its energy cost (wholesale
+ tariff adder), its carbon fee (carbon price × its emissions) and, over its GPU-hours, the
site's ask plus the capacity price of that hour. It pays that charge, or its value where the
charge is higher: the difference is its **uplift**, paid by the alliance, so no bid ever pays
more than its value (individual rationality by construction). A rejected bid is
**paradoxically rejected** when at some feasible placement its value exceeds that same
charge; its **lost opportunity** is the largest such excess (EUR).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optim.candidates import Candidates, MarketArrays, prefix_sums
from optim.errors import SolveTimeLimitError
from optim.solver import LpMaster, MasterMethod

#: Columns per bid at the start, and added per bid in each column-generation round: with
#: interior-point masters, more columns per round and fewer rounds is faster (measured at L:
#: 10 per round converged in 55-64 s, 3 in 140 s, 30 in 88 s).
COLUMNS_PER_BID = 3
COLUMNS_PER_ROUND = 10
#: Once a round brings fewer new columns than this share of the master, the masters go from
#: interior point to a vertex and then to primal simplex from its basis: the last interior
#: rounds cost a whole solve (about 6 s at L) for a few hundred columns, which simplex
#: takes in a few pivots.
SIMPLEX_TAIL_SHARE = 0.05
#: A column leaves the master after this many interior-point masters in a row at zero with a
#: reduced profit below minus ``DROP_SHARE`` of its net value; it may price in again later.
#: Why: each round adds up to ``COLUMNS_PER_ROUND`` columns per bid, and at XL the masters
#: grew to 250,000 columns whose interior-point solves took 2-3 minutes each. Dropping after
#: one such master, or at a reduced profit of -1 EUR, made columns leave and come back
#: round after round at L (interior-point duals move between rounds).
DROP_AFTER_ROUNDS = 2
DROP_SHARE = 0.05
#: Seconds any one master LP may take even past the deadline: prices need an optimal master.
MASTER_FLOOR_S = 120.0
#: Reduced profit (EUR) above which a candidate enters the master: a tenth of a cent, well
#: above HiGHS's dual tolerance on values of up to ~1e5 EUR.
REDUCED_PROFIT_TOL_EUR = 1e-3


@dataclass(frozen=True, slots=True)
class Prices:
    """The LP relaxation's prices.

    ``capacity_eur_per_gpu_hour`` (P, H) per (pool, hour); ``emissions_eur_per_kg`` the
    emissions cap's price (0 without a cap); ``bid_surplus_eur`` (B,) each bid's dual, its
    LP surplus; ``lp_objective_eur`` the relaxation's welfare (EUR); ``converged`` whether
    no candidate with positive reduced profit was left out (then the prices are exact);
    ``largest_reduced_profit_eur`` the largest reduced profit left when not converged.
    """

    capacity_eur_per_gpu_hour: np.ndarray
    emissions_eur_per_kg: float
    bid_surplus_eur: np.ndarray
    lp_objective_eur: float
    converged: bool
    largest_reduced_profit_eur: float
    iterations: int
    columns: int
    seconds: float


def capacity_charge(cands: Candidates, prices: np.ndarray) -> np.ndarray:
    """Σ over each candidate's GPU-hours of the capacity price (EUR): gpus × Σ_h price[p, h]."""
    prefix = prefix_sums(prices)
    return cands.gpus * (prefix[cands.pool, cands.start + cands.duration]
                         - prefix[cands.pool, cands.start])


def best_per_bid(bid: np.ndarray, score: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring entries of ``index`` for each bid (ties: lower index)."""
    if index.size == 0:
        return index
    order = index[np.lexsort((index, -score[index], bid[index]))]
    b = bid[order]
    first = np.r_[True, b[1:] != b[:-1]]
    rank = np.arange(order.size) - np.maximum.accumulate(np.where(first, np.arange(order.size),
                                                                  0))
    return np.sort(order[rank < k])


class Relaxation:
    """The LP relaxation solved by column generation (module docstring), kept between calls.

    ``net_eur`` is each candidate's net welfare at the round's carbon price. The clearing
    solves it before its neighbourhood search (whose moves it ranks) and asks it again for
    the prices once the placements are known: a converged master is not solved twice.
    """

    def __init__(self, cands: Candidates, arrays: MarketArrays, net_eur: np.ndarray,
                 emissions_cap_kg: float | None, threads: int | None = None) -> None:
        self.bids = len(arrays.bid_ids)
        # Candidates with net <= 0 never price in: their reduced profit is < 0 at any prices.
        self.positive = np.flatnonzero(net_eur > 0)
        self.sub = cands.subset(self.positive)
        self.net = net_eur[self.positive]
        self.master = LpMaster(self.bids, arrays.cap, emissions_cap_kg, threads)
        # The master's columns in its own order (indices into ``sub``), and for each how many
        # interior-point masters in a row it has been droppable (see DROP_AFTER_ROUNDS).
        self.master_columns = np.zeros(0, dtype=np.int64)
        self.idle_rounds = np.zeros(0, dtype=np.int64)
        self.position = np.full(len(cands), -1, dtype=np.int64)
        self.position[self.positive] = np.arange(self.positive.size)
        self.shape = arrays.cap.shape
        self.prices: Prices | None = None
        self.started = False
        # The last optimal master: objective, bid duals, capacity duals, emissions dual, and
        # the largest reduced profit left at them (EUR).
        self._last: tuple[float, np.ndarray, np.ndarray, float, float] | None = None

    @property
    def in_master(self) -> np.ndarray:
        """(len(sub),) whether each profitable candidate is a column of the master now."""
        mask = np.zeros(self.positive.size, dtype=bool)
        mask[self.master_columns] = True
        return mask

    @property
    def converged(self) -> bool:
        """Whether the last solve proved the master optimal for the whole relaxation."""
        return self.prices is not None and self.prices.converged

    def add(self, candidates: np.ndarray) -> int:
        """Add these candidates (indices into the round's candidates) as columns, unless
        they are in the master already or never profitable; returns how many were added."""
        local = self.position[candidates]
        return self._add(np.unique(local[local >= 0]))

    def _add(self, local: np.ndarray) -> int:
        local = local[~self.in_master[local]]
        if local.size == 0:
            return 0
        self.master_columns = np.r_[self.master_columns, local]
        self.idle_rounds = np.r_[self.idle_rounds, np.zeros(local.size, dtype=np.int64)]
        sub = self.sub
        self.master.add_columns(sub.bid[local], sub.pool[local], sub.start[local],
                                sub.duration[local], sub.gpus[local], sub.emissions_kg[local],
                                self.net[local])
        self.prices = None  # a new column may change the optimum
        return int(local.size)

    def solve(self, seconds: float, seed: np.ndarray | None = None,
              rank: np.ndarray | None = None, master_floor_s: float = MASTER_FLOOR_S) -> Prices:
        """Column generation from the current master until no column prices in.

        ``seed`` candidates join the master first; on the first call each bid also brings its
        ``COLUMNS_PER_BID`` best candidates by ``rank`` (one score per candidate, e.g. reduced
        profit at the Lagrangian bound's prices; without it, net value per GPU-hour).
        ``seconds`` caps the wall time, except that one master may run ``master_floor_s``
        past it: the last optimal master's duals are then returned, flagged not converged.
        Raises SolveTimeLimitError when no master has been solved optimally by then.
        """
        started = time.perf_counter()
        deadline = started + seconds
        sub, net = self.sub, self.net
        if seed is not None:
            self.add(seed)
        if not self.started:
            self.started = True
            score = net / (sub.gpus * sub.duration) if rank is None else rank[self.positive]
            self._add(best_per_bid(sub.bid, score, np.arange(self.positive.size),
                                    COLUMNS_PER_BID))
        if self.prices is not None and self.prices.converged:
            return self.prices
        objective, surplus, caps, sigma, largest = self._last or (
            0.0, np.zeros(self.bids), np.zeros(self.shape), 0.0, 0.0)
        iterations, converged = 0, self.positive.size == 0
        # Interior-point masters while many columns enter; once few or none do, a vertex
        # (its duals are the published prices), which may price in a few columns the
        # interior duals did not: from then on primal simplex resumes from the vertex's basis.
        method: MasterMethod = "interior"
        while not converged:
            iterations += 1
            try:
                objective, surplus, caps, sigma, values = self.master.solve(
                    max(deadline - time.perf_counter(), master_floor_s), method)
            except SolveTimeLimitError:
                # At XL one master may outlast the time left: the last optimal master's
                # duals still rank candidates, flagged not converged. Without one there are
                # no prices at all.
                if self._last is None:
                    raise
                break
            reduced = _reduced(sub, net, caps, sigma, surplus)
            if method == "interior":
                self._drop_idle(values, reduced)
            entering = np.flatnonzero((reduced > REDUCED_PROFIT_TOL_EUR) & ~self.in_master)
            largest = float(reduced[entering].max()) if entering.size else 0.0
            self._last = objective, surplus, caps, sigma, largest
            if entering.size == 0:
                if method != "interior":
                    converged = True
                    break
                method = "vertex"
                continue
            if time.perf_counter() >= deadline:
                break
            added = self._add(best_per_bid(sub.bid, reduced, entering, COLUMNS_PER_ROUND))
            if method == "vertex":
                method = "simplex"
            elif method == "interior" and added < SIMPLEX_TAIL_SHARE * self.master.columns:
                method = "vertex"
        self.prices = Prices(
            capacity_eur_per_gpu_hour=caps, emissions_eur_per_kg=sigma,
            bid_surplus_eur=surplus, lp_objective_eur=objective, converged=converged,
            largest_reduced_profit_eur=largest, iterations=iterations,
            columns=self.master.columns, seconds=time.perf_counter() - started,
        )
        return self.prices

    def _drop_idle(self, values: np.ndarray, reduced: np.ndarray) -> None:
        """Count, for each master column, the interior-point masters in a row it has sat at
        zero (``values``) well below zero in ``reduced`` profit, and take those at
        ``DROP_AFTER_ROUNDS`` out of the master (see the constant)."""
        mine = self.master_columns
        idle = (values < 1e-6) & (reduced[mine] < -DROP_SHARE * self.net[mine])
        self.idle_rounds = np.where(idle, self.idle_rounds + 1, 0)
        out = self.idle_rounds >= DROP_AFTER_ROUNDS
        if out.any():
            self.master.drop_columns(np.flatnonzero(out))
            self.master_columns, self.idle_rounds = mine[~out], self.idle_rounds[~out]


def relaxation_prices(cands: Candidates, arrays: MarketArrays, net_eur: np.ndarray,
                      emissions_cap_kg: float | None, *, seed: np.ndarray,
                      seconds: float, threads: int | None = None,
                      rank: np.ndarray | None = None) -> Prices:
    """Solve the LP relaxation by column generation and return its prices (module docstring).

    ``seed`` is the candidate indices to start from (the clearing's placements); see
    :class:`Relaxation` for the rest.
    """
    return Relaxation(cands, arrays, net_eur, emissions_cap_kg, threads).solve(
        seconds, seed=seed, rank=rank)


def reduced_profits(cands: Candidates, net_eur: np.ndarray, prices: Prices) -> np.ndarray:
    """Each candidate's reduced profit at the relaxation's prices (EUR): its net value less
    its capacity and emissions charges and its bid's LP surplus; 0 for the LP's own
    placements, < 0 for every candidate once the relaxation has converged."""
    return _reduced(cands, net_eur, prices.capacity_eur_per_gpu_hour,
                    prices.emissions_eur_per_kg, prices.bid_surplus_eur)


def _reduced(cands: Candidates, net_eur: np.ndarray, caps: np.ndarray, sigma: float,
             surplus: np.ndarray) -> np.ndarray:
    return net_eur - capacity_charge(cands, caps) - sigma * cands.emissions_kg - surplus[cands.bid]


@dataclass(frozen=True, slots=True)
class Payments:
    """Per accepted candidate (EUR, whole job): the capacity charge, the carbon fee, the full
    charge (energy + carbon fee + asks + capacity), what the bid pays and its uplift."""

    capacity_eur: np.ndarray
    carbon_fee_eur: np.ndarray
    charge_eur: np.ndarray
    payment_eur: np.ndarray
    uplift_eur: np.ndarray


def payments(chosen: Candidates, prices: Prices, carbon_price_eur_per_t: float) -> Payments:
    """Each accepted bid's payment: its charge, capped at its value (module docstring)."""
    capacity = capacity_charge(chosen, prices.capacity_eur_per_gpu_hour)
    fee = carbon_price_eur_per_t * chosen.emissions_kg / 1000.0
    charge = chosen.energy_cost_eur + fee + chosen.ask_eur + capacity
    paid = np.minimum(charge, chosen.value_eur)
    return Payments(capacity, fee, charge, paid, charge - paid)


def lost_opportunity(cands: Candidates, bids: int, accepted: np.ndarray, prices: Prices,
                     carbon_price_eur_per_t: float) -> np.ndarray:
    """(B,) for each rejected bid, the most its value exceeds its charge at any placement
    (EUR; 0 when it never does, and for accepted bids): > 0 marks a paradoxical rejection."""
    excess = (cands.net_eur(carbon_price_eur_per_t)
              - capacity_charge(cands, prices.capacity_eur_per_gpu_hour))
    out = np.zeros(bids)
    np.maximum.at(out, cands.bid, excess)
    out[accepted] = 0.0
    out[out <= REDUCED_PROFIT_TOL_EUR] = 0.0
    return out


__all__ = ["Payments", "Prices", "Relaxation", "best_per_bid", "capacity_charge",
           "lost_opportunity", "payments", "reduced_profits", "relaxation_prices"]

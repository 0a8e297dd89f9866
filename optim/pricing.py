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
starts from the clearing's own placements and each bid's best few candidates, and every
round adds, per bid, the candidates whose reduced profit at the master's duals is positive
(net − Σ gpus × capacity price − emissions price × kg − the bid's dual). When none is left
the master's duals are optimal for the whole relaxation. A time limit may stop it earlier;
``converged`` then says so and ``largest_reduced_profit_eur`` how far from optimal it is.

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
from optim.solver import LpMaster

#: Columns added per bid in each column-generation round, and per bid at the start.
COLUMNS_PER_BID = 3
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


def _best_per_bid(bid: np.ndarray, score: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring entries of ``index`` for each bid (ties: lower index)."""
    if index.size == 0:
        return index
    order = index[np.lexsort((index, -score[index], bid[index]))]
    b = bid[order]
    first = np.r_[True, b[1:] != b[:-1]]
    rank = np.arange(order.size) - np.maximum.accumulate(np.where(first, np.arange(order.size),
                                                                  0))
    return np.sort(order[rank < k])


def relaxation_prices(cands: Candidates, arrays: MarketArrays, net_eur: np.ndarray,
                      emissions_cap_kg: float | None, *, seed: np.ndarray,
                      seconds: float, threads: int | None = None,
                      rank: np.ndarray | None = None) -> Prices:
    """Solve the LP relaxation by column generation and return its prices (module docstring).

    ``net_eur`` is each candidate's net welfare at the round's carbon price; ``seed`` the
    candidate indices to start from (the clearing's placements); ``seconds`` caps the wall
    time (the last master's duals are returned, flagged not converged). ``rank`` (one score
    per candidate, e.g. reduced profit at the Lagrangian bound's prices) picks each bid's
    first columns; without it, net value per GPU-hour does.
    """
    started = time.perf_counter()
    deadline = started + seconds
    bids = len(arrays.bid_ids)
    # Candidates with net <= 0 never price in: their reduced profit is < 0 at any prices.
    positive = np.flatnonzero(net_eur > 0)
    sub = cands.subset(positive)
    net = net_eur[positive]
    master = LpMaster(bids, arrays.cap, emissions_cap_kg, threads)
    in_master = np.zeros(positive.size, dtype=bool)
    position = np.full(len(cands), -1, dtype=np.int64)
    position[positive] = np.arange(positive.size)

    def add(local: np.ndarray) -> int:
        local = local[~in_master[local]]
        in_master[local] = True
        master.add_columns(sub.bid[local], sub.pool[local], sub.start[local],
                           sub.duration[local], sub.gpus[local], sub.emissions_kg[local],
                           net[local])
        return int(local.size)

    score = net / (sub.gpus * sub.duration) if rank is None else rank[positive]
    first = np.union1d(position[seed][position[seed] >= 0],
                       _best_per_bid(sub.bid, score, np.arange(positive.size),
                                     COLUMNS_PER_BID))
    add(first)
    objective, surplus = 0.0, np.zeros(bids)
    caps, sigma = np.zeros(arrays.cap.shape), 0.0
    iterations, converged, largest = 0, positive.size == 0, 0.0
    while not converged:
        iterations += 1
        objective, surplus, caps, sigma, _ = master.solve(
            max(deadline - time.perf_counter(), MASTER_FLOOR_S))
        reduced = (net - capacity_charge(sub, caps) - sigma * sub.emissions_kg
                   - surplus[sub.bid])
        entering = np.flatnonzero((reduced > REDUCED_PROFIT_TOL_EUR) & ~in_master)
        if entering.size == 0:
            converged, largest = True, 0.0
            break
        largest = float(reduced[entering].max())
        if time.perf_counter() >= deadline:
            break
        add(_best_per_bid(sub.bid, reduced, entering, COLUMNS_PER_BID))
    return Prices(
        capacity_eur_per_gpu_hour=caps, emissions_eur_per_kg=sigma, bid_surplus_eur=surplus,
        lp_objective_eur=objective, converged=converged, largest_reduced_profit_eur=largest,
        iterations=iterations, columns=master.columns,
        seconds=time.perf_counter() - started,
    )


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


__all__ = ["Payments", "Prices", "capacity_charge", "lost_opportunity", "payments",
           "relaxation_prices"]

"""A valid upper bound on welfare for the whole market, by Lagrangian relaxation.

Relax every capacity row with a price ``pi[p, h] >= 0`` (EUR per GPU-hour) and the emissions
cap with ``sigma >= 0`` (EUR per kg). For any such prices, and any feasible clearing ``x``,

    welfare(x) <= sum(pi * cap) + sigma * cap_kg + sum over bids of
                  max(0, max over the bid's candidates of (net - gpus * sum_h pi - sigma * kg))

because each bid takes at most one candidate and each relaxed row's slack is >= 0. The bound
holds for every candidate of the market (not a restricted model), so a gap measured against
it is a gap on the whole, unrestricted problem. Its best value over the prices equals the LP
relaxation's optimum; projected subgradient steps (Polyak's rule toward a known feasible
welfare) approach it cheaply with array sums, without an LP solve.

The final prices also rank candidates for warm starts: a candidate's *reduced profit* is what
it adds over the prices it would pay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optim.candidates import Candidates, MarketArrays


@dataclass(frozen=True, slots=True)
class LagrangianBound:
    """The best bound found (EUR), the prices that gave it and the iterations used."""

    bound_eur: float
    prices_eur_per_gpu_hour: np.ndarray  # (P, H)
    emissions_price_eur_per_kg: float
    iterations: int


def _hour_sums(prices: np.ndarray, cands: Candidates) -> np.ndarray:
    """Σ over each candidate's hours of its pool's price (per GPU)."""
    prefix = np.zeros((prices.shape[0], prices.shape[1] + 1))
    np.cumsum(prices, axis=1, out=prefix[:, 1:])
    return prefix[cands.pool, cands.start + cands.duration] - prefix[cands.pool, cands.start]


def reduced_profit(cands: Candidates, net_eur: np.ndarray, prices: np.ndarray,
                   emissions_price: float = 0.0) -> np.ndarray:
    """Each candidate's net welfare minus the capacity and emissions prices it would pay."""
    return net_eur - cands.gpus * _hour_sums(prices, cands) - emissions_price * cands.emissions_kg


def _usage(cands: Candidates, idx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    diff = np.zeros((shape[0], shape[1] + 1))
    np.add.at(diff, (cands.pool[idx], cands.start[idx]), cands.gpus[idx])
    np.add.at(diff, (cands.pool[idx], cands.start[idx] + cands.duration[idx]), -cands.gpus[idx])
    return np.cumsum(diff, axis=1)[:, :-1]


def lagrangian_bound(
    cands: Candidates, arrays: MarketArrays, net_eur: np.ndarray, *,
    emissions_cap_kg: float | None, target_eur: float, iterations: int,
) -> LagrangianBound:
    """The best Lagrangian bound within ``iterations`` subgradient steps (module docstring).

    ``target_eur`` is the welfare of a known feasible clearing (Polyak's step aims at it).
    """
    shape = arrays.cap.shape
    cap = arrays.cap.astype(float)
    if len(cands) == 0:
        return LagrangianBound(0.0, np.zeros(shape), 0.0, 0)
    starts = np.flatnonzero(np.r_[True, cands.bid[1:] != cands.bid[:-1]])
    group = np.cumsum(np.r_[True, cands.bid[1:] != cands.bid[:-1]]) - 1
    prices = np.zeros(shape)
    sigma = 0.0
    best = (np.inf, prices, sigma)
    theta, stall = 1.0, 0
    used = 0
    while used < iterations:
        used += 1
        rp = reduced_profit(cands, net_eur, prices, sigma)
        top = np.maximum.reduceat(rp, starts)
        bound = float((prices * cap).sum() + np.maximum(top, 0.0).sum())
        if emissions_cap_kg is not None:
            bound += sigma * emissions_cap_kg
        if bound < best[0] - 1e-9:
            best, stall = (bound, prices.copy(), sigma), 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        # The subgradient: slack of each relaxed row at the relaxation's own choice.
        winners = np.flatnonzero((rp >= top[group]) & (rp > 0))
        winners = winners[np.r_[True, cands.bid[winners][1:] != cands.bid[winners][:-1]]] \
            if winners.size else winners
        slack = cap - _usage(cands, winners, shape)
        norm = float((slack**2).sum())
        e_slack = 0.0
        if emissions_cap_kg is not None:
            e_slack = emissions_cap_kg - float(cands.emissions_kg[winners].sum())
            norm += e_slack**2
        gap = bound - target_eur
        if norm <= 1e-12 or gap <= 1e-6 * max(1.0, abs(bound)) or theta < 1e-4:
            break
        step = theta * gap / norm
        prices = np.maximum(prices - step * slack, 0.0)
        if emissions_cap_kg is not None:
            sigma = max(sigma - step * e_slack, 0.0)
    return LagrangianBound(best[0], best[1], best[2], used)

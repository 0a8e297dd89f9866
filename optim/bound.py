"""A valid upper bound on welfare for the whole market, by Lagrangian relaxation.

Relaxed rows, for every pool ``p`` and hour ``h`` with ``C`` GPUs available:

* **capacity** — ``Σ gpus_c x_c <= C`` over the candidates running then, price ``pi >= 0``
  (EUR per GPU-hour);
* **gang rows** — for ``k = 1..GANG_ROWS``, with ``d = C // (k + 1) + 1``:
  ``Σ floor(gpus_c / d) x_c <= k``, price ``rho >= 0``. They hold for every integer clearing
  (divide the capacity row by ``d``, round its coefficients down, and its integer left side
  is then at most ``floor(C / d) <= k``: for k = 1, at most one job bigger than half the pool
  runs at a time). They cut off the LP's habit of running two such jobs half each, which
  makes the plain LP bound up to ~9 % loose on congested markets;
* the **emissions cap**, when there is one: ``Σ kg_c x_c <= cap_kg``, price ``sigma >= 0``
  (EUR per kg).

For any such prices and any feasible clearing ``x``,

    welfare(x) <= Σ pi * C + Σ rho * k + sigma * cap_kg + Σ over bids of
                  max(0, max over the bid's candidates of (net − what it would pay))

because each bid takes at most one candidate and each relaxed row's slack is >= 0. The bound
holds for every candidate of the market (not a restricted model), so a gap measured against
it is a gap on the whole, unrestricted problem. Projected subgradient steps (Polyak's rule
toward a known feasible welfare) lower it cheaply with array sums, without an LP solve.

The final prices also rank candidates for warm starts: a candidate's *reduced profit* is what
it adds over the prices it would pay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optim.candidates import Candidates, MarketArrays, prefix_sums

#: Gang rows per (pool, hour), k = 1..GANG_ROWS (see the module docstring).
GANG_ROWS = 4
# Where this bound stands (measured by column generation on the LP with the same rows, whose
# duals priced every candidate): at L (2,000 bids) the LP is 1,351,640 EUR and the subgradient
# ends at 1,352,348, 0.05 % above it; at M 430,396 against 430,750. More rows of the same
# kind barely help: adding Σ floor(gpus / d) x <= floor(C / d) for d = 16..512 lowers the LP
# to 1,350,351 at L (0.1 %), and here the subgradient then ends higher (1,353,478), not lower.
# HiGHS's own cuts do better only where they have time: on the whole M model they lowered
# its root bound 1.4 % (430,116 to 424,215) in 540 s, but on the LP's 27,708 columns at L
# only 0.02 % in 145 s. Nor where the big jobs alone are integer: with the binaries of every
# profitable candidate of the 256- and 512-GPU bids (6,307) beside the LP's 16,248 columns
# (continuous), HiGHS at L had its root LP (1,362,800 EUR) after 37 s, and 150 s in its
# root cuts had brought that model's bound to 1,353,818 (not a bound for the market: its
# small jobs have only the LP's columns), still above this one, with no clearing better
# than its start (1,183,317) and no node explored. So within a clearing's time the bound is
# at the LP's limit: the gap left at L is the LP's integrality gap plus the search's
# shortfall, in proportions not measured at L (no L clearing has been proven optimal).
# Measured on smaller markets with L's 125 bids per site (gridbridge market make --seed 1,
# whole model, HiGHS, 1 thread): at 250 bids x 2 sites, 1,500 s of branch-and-cut ended at
# 116,742 EUR with its bound at 120,098, 3.0 % under this bound (123,779), so this bound is
# at least 3 % loose there, and the 60-s search's 115,203 is 1.3-4.1 % short of the optimum;
# at 500 x 4, 600 s ended at 385,080 with its bound at 411,466 (0.75 % under this one,
# 414,594), below the 60-s search's 387,600.
#: Steps without a better bound before the step size halves. Halving early stalls the
#: subgradient short of the Lagrangian dual's optimum (which is the LP bound with the gang
#: rows). Measured at M (500 bids, LP with the gang rows 430,131 EUR): patience 10 stopped at
#: 434,591, 30 at 432,941, 60 at 431,453, 100 at 431,092; at L (2,000 bids) 10 gave
#: 1,358,063 and 100 gave 1,352,368 in 45 s.
PATIENCE = 100
#: Steps between calls of the Lagrangian heuristic after the first ``EARLY_STEPS``: it costs
#: about 90 subgradient steps at L (0.19 s against 2.0 ms a step), and the prices barely
#: move late in the run.
LATE_EVERY = 500
EARLY_STEPS = 300
# No early stop once the bound stalls, though the bound barely moves late: at M,
# --time-limit 60, stopping once it fell < 0.02 % over 1,000 steps (5.2 s instead of 8.1 s,
# 18 EUR looser) gave 391,697 and 391,780 EUR against 403,065 without. Not through its
# prices: the search ranked by the stopped run's prices from the full run's warm start
# reached 403,615, and from the stopped run's warm start (another greedy, 271 EUR better)
# ranked by the full run's prices, 391,735. The search is that sensitive to where it starts.


def _divisors(cap: np.ndarray) -> np.ndarray:
    """``d[k-1, p, h] = C // (k + 1) + 1`` for the gang rows."""
    return np.stack([cap // (k + 1) + 1 for k in range(1, GANG_ROWS + 1)])


@dataclass(frozen=True, slots=True)
class LagrangianBound:
    """The best bound found (EUR), the prices that gave it and the iterations used.

    ``prices_eur_per_gpu_hour`` (P, H) prices the capacity rows; ``gang_prices`` (K, P, H)
    the gang rows (EUR per unit of row); ``emissions_price_eur_per_kg`` the cap.
    """

    bound_eur: float
    prices_eur_per_gpu_hour: np.ndarray
    gang_prices: np.ndarray
    emissions_price_eur_per_kg: float
    iterations: int
    divisors: np.ndarray

    def scaled(self, factor: float) -> LagrangianBound:
        """The same prices times ``factor`` (the bound figure is left as it was)."""
        return LagrangianBound(self.bound_eur, self.prices_eur_per_gpu_hour * factor,
                               self.gang_prices * factor, self.emissions_price_eur_per_kg
                               * factor, self.iterations, self.divisors)


#: Candidates of one gang size: (GPUs, their positions, and where each one's hours begin and
#: end in a flattened (pools, hours + 1) prefix-sum array).
_Size = tuple[int, np.ndarray, np.ndarray, np.ndarray]


def _by_size(cands: Candidates, hours: int) -> list[_Size]:
    """Candidates grouped by gang size, for :func:`_charges`. Why once per bound: regrouping
    at every subgradient step took about 40 % of the step's time at L (np.unique and
    boolean masks over 279k candidates)."""
    out = []
    row = cands.pool.astype(np.int64) * (hours + 1)
    for g in np.unique(cands.gpus):
        idx = np.flatnonzero(cands.gpus == g)
        out.append((int(g), idx, row[idx] + cands.start[idx],
                    row[idx] + cands.start[idx] + cands.duration[idx]))
    return out


def _charges(cands: Candidates, pi: np.ndarray, rho: np.ndarray, divisors: np.ndarray,
             sigma: float, sizes: list[_Size] | None = None) -> np.ndarray:
    """What each candidate pays at the row prices: Σ over its hours, plus sigma × kg.
    ``sizes`` is :func:`_by_size` of ``cands``, when the caller keeps it."""
    out = sigma * cands.emissions_kg
    for g, idx, first, end in _by_size(cands, pi.shape[1]) if sizes is None else sizes:
        prefix = prefix_sums(g * pi + (np.floor(g / divisors) * rho).sum(axis=0)).ravel()
        out[idx] += prefix[end] - prefix[first]
    return out


def reduced_profit(cands: Candidates, net_eur: np.ndarray, prices: LagrangianBound) -> np.ndarray:
    """Each candidate's net welfare minus the row prices it would pay."""
    return net_eur - _charges(cands, prices.prices_eur_per_gpu_hour, prices.gang_prices,
                              prices.divisors, prices.emissions_price_eur_per_kg)


def _running(cands: Candidates, idx: np.ndarray, shape: tuple[int, int]) -> dict[int, np.ndarray]:
    """For each gang size, how many of the candidates ``idx`` run in each (pool, hour)."""
    out = {}
    for g in np.unique(cands.gpus[idx]):
        sel = idx[cands.gpus[idx] == g]
        diff = np.zeros((shape[0], shape[1] + 1))
        np.add.at(diff, (cands.pool[sel], cands.start[sel]), 1.0)
        np.add.at(diff, (cands.pool[sel], cands.start[sel] + cands.duration[sel]), -1.0)
        out[int(g)] = np.cumsum(diff, axis=1)[:, :-1]
    return out


def lagrangian_bound(
    cands: Candidates, arrays: MarketArrays, net_eur: np.ndarray, *,
    emissions_cap_kg: float | None, target_eur: float, iterations: int,
    heuristic: Callable[[LagrangianBound], float] | None = None, every: int = 25,
    seconds: float | None = None,
) -> LagrangianBound:
    """The best Lagrangian bound within ``iterations`` subgradient steps (module docstring).

    ``target_eur`` is the welfare of a known feasible clearing (Polyak's step aims at it).
    ``heuristic``, when given, is called with the current prices every ``every`` steps
    (every ``LATE_EVERY`` after the first ``EARLY_STEPS``) and
    returns the welfare of a feasible clearing it built from them; a better one raises the
    target (the classic Lagrangian heuristic: prices along the way rank candidates well).
    ``seconds`` caps the wall time (the bound found so far stays valid; it is only looser).
    """
    deadline = None if seconds is None else time.perf_counter() + seconds
    shape = arrays.cap.shape
    cap = arrays.cap.astype(float)
    divisors = _divisors(arrays.cap)
    ks = np.arange(1, GANG_ROWS + 1, dtype=float)[:, None, None]
    pi, rho, sigma = np.zeros(shape), np.zeros(divisors.shape), 0.0
    if len(cands) == 0:
        return LagrangianBound(0.0, pi, rho, 0.0, 0, divisors)
    first = np.r_[True, cands.bid[1:] != cands.bid[:-1]]
    starts, group = np.flatnonzero(first), np.cumsum(first) - 1
    sizes = _by_size(cands, shape[1])
    best = (np.inf, pi, rho, sigma)
    theta, stall = 1.0, 0
    used = 0
    while used < iterations and (deadline is None or time.perf_counter() < deadline):
        used += 1
        rp = net_eur - _charges(cands, pi, rho, divisors, sigma, sizes)
        top = np.maximum.reduceat(rp, starts)
        bound = float((pi * cap).sum() + (rho * ks).sum() + np.maximum(top, 0.0).sum())
        if emissions_cap_kg is not None:
            bound += sigma * emissions_cap_kg
        if bound < best[0] - 1e-9:
            best, stall = (bound, pi.copy(), rho.copy(), sigma), 0
        else:
            stall += 1
            if stall >= PATIENCE:
                theta, stall = theta / 2, 0
        # The subgradient: slack of each relaxed row at the relaxation's own choice.
        winners = np.flatnonzero((rp >= top[group]) & (rp > 0))
        if winners.size:
            winners = winners[np.r_[True, cands.bid[winners][1:] != cands.bid[winners][:-1]]]
        running = _running(cands, winners, shape)
        slack = cap - sum((g * n for g, n in running.items()), np.zeros(shape))
        gang_slack = ks - sum((np.floor(g / divisors) * n for g, n in running.items()),
                              np.zeros(divisors.shape))
        # Gang rows are stepped as if multiplied by their divisor (GPU units, like the
        # capacity rows); unscaled, their unit slacks are lost beside slacks of hundreds.
        norm = float((slack**2).sum() + ((divisors * gang_slack) ** 2).sum())
        e_slack = 0.0
        if emissions_cap_kg is not None:
            e_slack = emissions_cap_kg - float(cands.emissions_kg[winners].sum())
            norm += e_slack**2
        period = every if used <= EARLY_STEPS else LATE_EVERY
        if heuristic is not None and used % period == 1:
            target_eur = max(target_eur, heuristic(
                LagrangianBound(bound, pi, rho, sigma, used, divisors)))
        gap = bound - target_eur
        if norm <= 1e-12 or gap <= 1e-6 * max(1.0, abs(bound)) or theta < 1e-4:
            break
        step = theta * gap / norm
        pi = np.maximum(pi - step * slack, 0.0)
        rho = np.maximum(rho - step * divisors**2 * gang_slack, 0.0)
        if emissions_cap_kg is not None:
            sigma = max(sigma - step * e_slack, 0.0)
    return LagrangianBound(best[0], best[1], best[2], best[3], used, divisors)

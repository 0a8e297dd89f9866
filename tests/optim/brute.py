"""Brute force for tiny markets: the best welfare over every combination of candidates.

Independent of the model and the solver: it tries every assignment (each bid rejected or at
one of its candidates), keeps those that respect capacity and the emissions cap, and returns
the best welfare. Only for markets with a handful of bids.
"""

from __future__ import annotations

import itertools

import numpy as np

from optim.candidates import enumerate_candidates, market_arrays
from optim.market import Market


def best_welfare(market: Market, carbon_price: float, cap_kg: float | None = None) -> float:
    arrays = market_arrays(market)
    cands = enumerate_candidates(market, arrays)
    net = cands.net_eur(carbon_price)
    per_bid = [[-1, *np.flatnonzero(cands.bid == b).tolist()] for b in range(len(arrays.bid_ids))]
    best = 0.0
    for combo in itertools.product(*per_bid):
        chosen = [i for i in combo if i >= 0]
        used = np.zeros_like(arrays.cap)
        for i in chosen:
            used[cands.pool[i], cands.start[i]:cands.start[i] + cands.duration[i]] += cands.gpus[i]
        if (used > arrays.cap).any():
            continue
        if cap_kg is not None and cands.emissions_kg[chosen].sum() > cap_kg + 1e-9:
            continue
        best = max(best, float(net[chosen].sum()))
    return best

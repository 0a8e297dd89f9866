"""Greedy placements: the two baselines of the issue and the solver's warm starts.

All of them place whole bids into the capacity left over by earlier choices and never move a
placed bid. They work on the same candidates (:mod:`optim.candidates`) as the model, so their
figures are accounted exactly like the optimum's (:mod:`optim.accounting`).

* :func:`carbon_blind_greedy` — bids in release order (then bid id); each takes, among the
  sites/types it can still get, the one whose earliest feasible start is cheapest in energy +
  asks (no carbon price), at that earliest start; accepted if its value covers that cost.
* :func:`carbon_aware_greedy` — the per-job carbon-aware scheduler in the style of the Carbon
  Aware SDK: bids in release order (first come, first served), each independently takes the
  feasible site and window with the lowest emissions (ties: cheaper, then earlier); accepted if
  its value covers its full cost including the carbon fee at the round's carbon price.
* :func:`ordered_greedy` — candidates in any given order (e.g. by Lagrangian reduced profit),
  each placed if its bid is not yet placed, it adds welfare and it fits: a warm start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optim.candidates import Candidates, MarketArrays

#: Candidates per chunk of ordered_greedy's loop (see there).
CHUNK = 20_000

#: A rule picks one of a bid's feasible candidates (indices into Candidates) or None.
Choice = Callable[[np.ndarray], int | None]


def bid_slices(cands: Candidates, bids: int) -> tuple[np.ndarray, np.ndarray]:
    """``lo[b]:hi[b]`` is bid b's block of candidates (candidates are sorted by bid)."""
    lo = np.searchsorted(cands.bid, np.arange(bids), side="left")
    hi = np.searchsorted(cands.bid, np.arange(bids), side="right")
    return lo, hi


def fits_in(rem: np.ndarray, cands: Candidates, idx: np.ndarray) -> np.ndarray:
    """Which candidates at ``idx`` (of one bid) fit in the remaining capacity ``rem`` (P, H,
    GPUs)."""
    if idx.size == 0:
        return np.zeros(0, dtype=bool)
    pools = np.unique(cands.pool[idx])
    g = int(cands.gpus[idx[0]])  # one bid: one gang size
    short = np.zeros((pools.size, rem.shape[1] + 1), dtype=np.int64)
    np.cumsum(rem[pools] < g, axis=1, out=short[:, 1:])
    row = np.searchsorted(pools, cands.pool[idx])
    start, end = cands.start[idx], cands.start[idx] + cands.duration[idx]
    return short[row, end] - short[row, start] == 0


def take_up(rem: np.ndarray, cands: Candidates, i: int) -> None:
    """Take candidate ``i``'s GPUs out of the remaining capacity ``rem`` (P, H)."""
    p, s, d = int(cands.pool[i]), int(cands.start[i]), int(cands.duration[i])
    rem[p, s:s + d] -= cands.gpus[i]


def release_order(arrays: MarketArrays) -> np.ndarray:
    """Bid indices by release hour, then bid id (bid ids are sorted already)."""
    return np.lexsort((np.arange(len(arrays.bid_ids)), arrays.bid_release))


def bid_order_greedy(cands: Candidates, arrays: MarketArrays, order: np.ndarray,
                     choose: Choice) -> np.ndarray:
    """Bids in ``order``; each takes ``choose``'s pick among its still-feasible candidates."""
    rem = arrays.cap.copy()
    lo, hi = bid_slices(cands, len(arrays.bid_ids))
    chosen: list[int] = []
    for b in order:
        idx = np.arange(lo[b], hi[b])
        feasible = idx[fits_in(rem, cands, idx)]
        if feasible.size == 0:
            continue
        pick = choose(feasible)
        if pick is not None:
            take_up(rem, cands, pick)
            chosen.append(pick)
    return np.array(sorted(chosen), dtype=np.int64)


def carbon_blind_greedy(cands: Candidates, arrays: MarketArrays) -> np.ndarray:
    """The carbon-blind baseline (module docstring); indices of the accepted candidates."""
    cost = cands.energy_cost_eur + cands.ask_eur

    def choose(feasible: np.ndarray) -> int | None:
        # Earliest feasible start per pool (candidates are sorted by pool, then start).
        pools = cands.pool[feasible]
        first = feasible[np.r_[True, pools[1:] != pools[:-1]]]
        best = first[np.lexsort((cands.start[first], cost[first]))[0]]
        return int(best) if cands.value_eur[best] >= cost[best] else None

    return bid_order_greedy(cands, arrays, release_order(arrays), choose)


def carbon_aware_greedy(cands: Candidates, arrays: MarketArrays,
                        carbon_price_eur_per_t: float) -> np.ndarray:
    """The per-job carbon-aware baseline (module docstring); accepted candidate indices."""
    cost = cands.cost_eur(carbon_price_eur_per_t)

    def choose(feasible: np.ndarray) -> int | None:
        best = feasible[np.lexsort((cands.start[feasible], cost[feasible],
                                    cands.emissions_kg[feasible]))[0]]
        return int(best) if cands.value_eur[best] >= cost[best] else None

    return bid_order_greedy(cands, arrays, release_order(arrays), choose)


def ordered_greedy(cands: Candidates, arrays: MarketArrays, order: np.ndarray,
                   net_eur: np.ndarray, emissions_room_kg: float | None = None,
                   per_bid: int | None = None) -> np.ndarray:
    """Candidates in ``order``, each placed if its bid is free, ``net_eur > 0`` and it fits.

    ``emissions_room_kg`` (an emissions cap) is respected too when given; ``per_bid`` limits
    each bid to its first candidates in the order.
    """
    rem = arrays.cap.copy()
    placed = np.zeros(len(arrays.bid_ids), dtype=bool)
    room = np.inf if emissions_room_kg is None else emissions_room_kg
    chosen: list[int] = []
    order = order[net_eur[order] > 0]
    if per_bid is not None and order.size:
        # Only each bid's first per_bid candidates in the order: a bid whose first ones are
        # all blocked rarely fits later, and the loop over millions of candidates is what
        # makes a greedy slow on large markets.
        bids = cands.bid[order]
        by_bid = np.argsort(bids, kind="stable")
        first = np.r_[0, np.flatnonzero(np.diff(bids[by_bid])) + 1]
        rank = np.arange(order.size) - np.repeat(first, np.diff(np.r_[first, order.size]))
        keep = np.zeros(order.size, dtype=bool)
        keep[by_bid[rank < per_bid]] = True
        order = order[keep]
    # In chunks: before each, drop (vectorised) the candidates of bids placed meanwhile, so
    # the Python loop only sees candidates that still have a chance.
    bid, pool, start = cands.bid[order], cands.pool[order], cands.start[order]
    end, gpus, kg = start + cands.duration[order], cands.gpus[order], cands.emissions_kg[order]
    for lo in range(0, order.size, CHUNK):
        sel = np.arange(lo, min(lo + CHUNK, order.size))
        sel = sel[~placed[bid[sel]]]
        for j in sel.tolist():
            b = bid[j]
            if placed[b] or kg[j] > room:
                continue
            p, s, e, g = pool[j], start[j], end[j], gpus[j]
            if rem[p, s:e].min() >= g:
                rem[p, s:e] -= g
                placed[b] = True
                room -= kg[j]
                chosen.append(int(order[j]))
    return np.array(sorted(chosen), dtype=np.int64)

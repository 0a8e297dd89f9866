"""Large-neighbourhood search: improve a clearing by re-solving small pieces of it exactly.

A *neighbourhood* is one or two pools of the same GPU type over a window of hours. Every bid
placed there is freed, and so is every unplaced bid with a profitable candidate there; all
other placements stay fixed. The freed bids' candidates there (and where they are now),
against the capacity the fixed
placements leave (and the emissions room they leave, under a cap), form a small clearing
model of exactly the same shape as the whole one (:mod:`optim.formulation`,
:mod:`optim.model`), solved by HiGHS through Pyomo from the current placements as a warm
start. Its optimum can only keep or raise welfare, and joined with the fixed rest it is a
feasible clearing of the whole market. Neighbourhoods are visited in order of unmet
profitable demand, so the most contested pools are re-packed first.

This improves the incumbent only; the bound reported for the market is still the
Lagrangian bound over every candidate (:mod:`optim.bound`), so the gap stays honest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from optim.candidates import Candidates, MarketArrays
from optim.formulation import formulate
from optim.model import build_model
from optim.options import ModelSize, SolveOptions
from optim.solver import PyomoHighs

#: Largest neighbourhood handed to HiGHS (binaries); bigger ones drop their least
#: profitable candidates first.
MAX_SUB_VARIABLES = 4000
SUB_TIME_LIMIT_S = 2.0
WINDOW_H = 48
#: Unplaced bids a neighbourhood frees at most (the best ranked there).
MAX_NEW_BIDS = 40
#: Stop after this many neighbourhoods in a row brought nothing.
STALE_SWEEP = 60


@dataclass(frozen=True, slots=True)
class SearchStats:
    """What the search did: neighbourhoods solved, improvements, biggest model, seconds."""

    neighbourhoods: int
    improvements: int
    largest: ModelSize
    build_s: float
    handover_s: float
    solve_s: float


def _neighbourhoods(cands: Candidates, arrays: MarketArrays, net: np.ndarray,
                    profitable: np.ndarray, placed_bid: np.ndarray, rng: np.random.Generator,
                    ) -> list[tuple[np.ndarray, int, int]]:
    """Regions to visit: (pools, first hour, end hour), most unmet profitable demand first.

    Each region is one pool with a random partner of its type, over a window of
    ``WINDOW_H`` hours; windows overlap by half.
    """
    open_ = (~placed_bid[cands.bid]) & profitable
    by_type: dict[str, list[int]] = {}
    for p, t in enumerate(arrays.pool_type):
        by_type.setdefault(t, []).append(p)
    window = min(WINDOW_H, arrays.hours)
    firsts = list(range(0, max(arrays.hours - window, 0) + 1, max(window // 2, 1)))
    if firsts[-1] + window < arrays.hours:
        firsts.append(arrays.hours - window)
    regions, weights = [], []
    for p in range(arrays.pools):
        mates = [q for q in by_type[arrays.pool_type[p]] if q != p]
        for h0 in firsts:
            pools = [p] if not mates else [p, int(rng.choice(mates))]
            here = open_ & np.isin(cands.pool, pools) & (cands.start < h0 + window) & (
                cands.start + cands.duration > h0)
            regions.append((np.array(sorted(pools), dtype=np.int64), h0, h0 + window))
            weights.append(float(net[here].sum()))
    order = np.argsort(-np.array(weights), kind="stable")
    return [regions[i] for i in order]


def improve(
    cands: Candidates, arrays: MarketArrays, net: np.ndarray, chosen: np.ndarray,
    options: SolveOptions, carbon_price_eur_per_t: float, emissions_cap_kg: float | None,
    seconds: float, rank: np.ndarray | None = None, allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, SearchStats]:
    """Improve ``chosen`` (candidate indices) within about ``seconds`` of wall time.

    ``rank`` (one score per candidate, higher is better; e.g. reduced profit at the
    Lagrangian prices) picks which unplaced bids a neighbourhood frees: the
    ``MAX_NEW_BIDS`` whose best candidate there ranks highest. ``allowed`` (a mask over
    candidates) limits where freed bids may move; their current places stay open to them.
    """
    score = net if rank is None else rank
    deadline = time.perf_counter() + seconds
    rng = np.random.default_rng(options.seed)
    chosen = np.asarray(chosen, dtype=np.int64)
    profitable = net > 0 if allowed is None else (net > 0) & allowed
    stats = {"n": 0, "better": 0, "build": 0.0, "handover": 0.0, "solve": 0.0}
    largest = ModelSize(0, 0, 0)
    stale = 0
    while time.perf_counter() < deadline and stale < STALE_SWEEP:
        placed_bid = np.zeros(len(arrays.bid_ids), dtype=bool)
        placed_bid[cands.bid[chosen]] = True
        for pools, h0, h1 in _neighbourhoods(cands, arrays, net, profitable, placed_bid, rng):
            left = deadline - time.perf_counter()
            if left <= 0.5:
                break
            in_pools = np.isin(cands.pool, pools)
            overlap = in_pools & (cands.start < h1) & (cands.start + cands.duration > h0)
            # Moves start inside the window: long jobs starting earlier would make the model
            # several times bigger for little gain.
            region = in_pools & (cands.start >= h0) & (cands.start < h1) & profitable
            freed_bids = np.zeros(len(arrays.bid_ids), dtype=bool)
            freed_bids[cands.bid[chosen[overlap[chosen]]]] = True
            waiting = np.flatnonzero(region & ~placed_bid[cands.bid])
            if waiting.size:
                best = np.full(len(arrays.bid_ids), -np.inf)
                np.maximum.at(best, cands.bid[waiting], score[waiting])
                hopeful = np.flatnonzero(np.isfinite(best))
                hopeful = hopeful[np.argsort(-best[hopeful], kind="stable")[:MAX_NEW_BIDS]]
                freed_bids[hopeful] = True
            fixed = chosen[~freed_bids[cands.bid[chosen]]]
            current = chosen[freed_bids[cands.bid[chosen]]]
            # The freed bids may move anywhere in the region, or stay where they are.
            sub = np.union1d(np.flatnonzero(region & freed_bids[cands.bid]), current)
            if sub.size > MAX_SUB_VARIABLES:
                keep = np.argsort(-net[sub], kind="stable")[:MAX_SUB_VARIABLES]
                sub = np.union1d(sub[keep], current)
            if sub.size == 0:
                stale += 1
                continue
            residual = arrays.cap - cands.usage(fixed, arrays.cap.shape)
            room = None
            if emissions_cap_kg is not None:
                room = emissions_cap_kg - float(cands.emissions_kg[fixed].sum())
            started = time.perf_counter()
            f = formulate(cands.subset(sub), replace(arrays, cap=residual), room)
            model = build_model(f, carbon_price_eur_per_t)
            built = time.perf_counter()
            solver = PyomoHighs(model, options, min(SUB_TIME_LIMIT_S, left - 0.25), 1e-6)
            position = np.full(len(cands), -1, dtype=np.int64)
            position[sub] = np.arange(sub.size)
            result = solver.solve(position[current])
            stats["n"] += 1
            stats["build"] += built - started
            stats["handover"] += solver.handover_s
            stats["solve"] += result.solve_s + result.extract_s
            if f.nonzeros > largest.nonzeros:
                largest = ModelSize(f.variables, f.constraints, f.nonzeros)
            picked = sub[result.chosen]
            if float(net[picked].sum()) > float(net[current].sum()) + 1e-6:
                chosen = np.sort(np.concatenate([fixed, picked]))
                stats["better"] += 1
                stale = 0
                placed_bid = np.zeros(len(arrays.bid_ids), dtype=bool)
                placed_bid[cands.bid[chosen]] = True
            else:
                stale += 1
            if stale >= STALE_SWEEP:
                break
    return chosen, SearchStats(stats["n"], stats["better"], largest, stats["build"],
                               stats["handover"], stats["solve"])

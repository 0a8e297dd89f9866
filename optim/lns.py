"""Large-neighbourhood search: improve a clearing by re-solving small pieces of it exactly.

A *neighbourhood* is one or two pools over a window of hours (two of the same GPU type at
first, then of any types that share bids, last groups of more: see :func:`improve`). Every bid
placed there is freed, and so is every unplaced bid with a profitable candidate there; all
other placements stay fixed. The freed bids' candidates there (and where they are now),
against the capacity the fixed
placements leave (and the emissions room they leave, under a cap), form a small clearing
model of exactly the same shape as the whole one (:mod:`optim.formulation`,
:mod:`optim.model`), solved by HiGHS through Pyomo from the current placements as a warm
start. Its optimum can only keep or raise welfare, and joined with the fixed rest it is a
feasible clearing of the whole market. Neighbourhoods are visited in order of unmet
profitable demand, so the most contested pools are re-packed first; once that stalls, in
random order; once that stalls too, ever bigger ones (more pools, longer windows, up to the
whole market) while time is left. Last, any unplaced bid that still fits somewhere is placed
(:func:`fill`), placed bids move to better places that are free (:func:`relocate`), and the
fill runs once more for the room the moves left.

Several neighbourhoods are solved at once, one per worker process (one per CPU by default,
:func:`search_workers`), when they share no pool and no freed bid: each result is then
still feasible joined with whatever the others changed meanwhile. Measured at L
(``gridbridge clear --time-limit 240``): 1,020 neighbourhoods on 2 workers against 413 on
one, welfare 1,260,099 EUR against 1,258,126 (within the search's run-to-run spread: three
280-s clearings with seed 0 ended at 1,246,164, 1,258,145 and 1,264,986 EUR: which result
comes in first, and where HiGHS's time limit stops each neighbourhood, depend on timing).

This improves the incumbent only; the bound reported for the market is still the
Lagrangian bound over every candidate (:mod:`optim.bound`), so the gap stays honest.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from optim.candidates import Candidates, MarketArrays
from optim.formulation import Formulation, formulate
from optim.greedy import bid_slices, fits_in, ordered_greedy, take_up
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
#: Neighbourhoods in a row that bring nothing before the first phase ends (see improve).
STALE_SWEEP = 60
#: Most neighbourhoods solved at once (one worker process each) when options leave it open.
MAX_WORKERS = 8
#: How much bigger each level of the last phase's neighbourhoods is than the one before
#: (see improve): pools and the HiGHS time limit per neighbourhood, and its window (hours).
GROW_POOLS = 2
GROW_WINDOW = 1.5
GROW_TIME = 2.5
#: Passes of the final relocation at most (see relocate). Measured at L on a 240-s clearing:
#: 210, 37 and 4 moves in passes one to three, none after.
RELOCATE_PASSES = 3
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Scale:
    """How big a neighbourhood is: ``pools`` pools over ``window_h`` hours, at most
    ``max_variables`` binaries and ``max_new_bids`` freed unplaced bids, solved by HiGHS in
    at most ``time_limit_s`` seconds."""

    pools: int = 2
    window_h: int = WINDOW_H
    max_variables: int = MAX_SUB_VARIABLES
    max_new_bids: int = MAX_NEW_BIDS
    time_limit_s: float = SUB_TIME_LIMIT_S

    def grown(self, arrays: MarketArrays) -> Scale:
        """The next level: more pools (all of them at most), a longer window (the whole
        horizon at most), a longer time limit, and room for the bigger models."""
        return Scale(min(self.pools * GROW_POOLS, arrays.pools),
                     min(int(self.window_h * GROW_WINDOW), arrays.hours),
                     self.max_variables * 2, self.max_new_bids * 2,
                     self.time_limit_s * GROW_TIME)

    def covers(self, arrays: MarketArrays) -> bool:
        """Whether one neighbourhood is the whole market: then growing cannot help."""
        return self.pools >= arrays.pools and self.window_h >= arrays.hours


@dataclass(frozen=True, slots=True)
class SearchStats:
    """What the search did: neighbourhoods solved, improvements, biggest model, seconds
    (summed over the ``workers`` that solved neighbourhoods at once, so they may exceed the
    wall time); ``wide`` of the neighbourhoods (and ``wide_improvements``) were of the
    second phase, ``grown`` (and ``grown_improvements``) of the third, which raised welfare
    by ``grown_gain_eur`` EUR and whose last ``level`` it reached (None when it did not
    run), ``relocated`` placed bids were moved to better places at the end
    (:func:`relocate`), and ``filled`` bids were placed by the final fill."""

    neighbourhoods: int
    improvements: int
    largest: ModelSize
    build_s: float
    handover_s: float
    solve_s: float
    wide: int = 0
    wide_improvements: int = 0
    grown: int = 0
    grown_improvements: int = 0
    grown_gain_eur: float = 0.0
    level: Scale | None = None
    relocated: int = 0
    filled: int = 0
    workers: int = 1


def _neighbourhoods(cands: Candidates, arrays: MarketArrays, net: np.ndarray,
                    profitable: np.ndarray, placed_bid: np.ndarray, rng: np.random.Generator,
                    shared: np.ndarray | None = None) -> list[tuple[np.ndarray, int, int]]:
    """Regions to visit: (pools, first hour, end hour), most unmet profitable demand first.

    Each region is one pool with a random partner, over a window of ``WINDOW_H`` hours;
    windows overlap by half. The partner is of the pool's GPU type; or, given ``shared``
    (pools × pools, how many bids could run in both), any pool, drawn in proportion to the
    bids they share: then a bid may move between GPU types too.
    """
    open_ = (~placed_bid[cands.bid]) & profitable
    by_type: dict[str, list[int]] = {}
    for p, t in enumerate(arrays.pool_type):
        by_type.setdefault(t, []).append(p)
    window = min(WINDOW_H, arrays.hours)
    firsts = _window_starts(arrays.hours, window)
    regions, weights = [], []
    for p in range(arrays.pools):
        mates = [q for q in by_type[arrays.pool_type[p]] if q != p]
        for h0 in firsts:
            if shared is not None and shared[p].sum() > 0:
                pools = [p, int(rng.choice(arrays.pools, p=shared[p] / shared[p].sum()))]
            else:
                pools = [p] if not mates else [p, int(rng.choice(mates))]
            here = open_ & np.isin(cands.pool, pools) & (cands.start < h0 + window) & (
                cands.start + cands.duration > h0)
            regions.append((np.array(sorted(pools), dtype=np.int64), h0, h0 + window))
            weights.append(float(net[here].sum()))
    order = np.argsort(-np.array(weights), kind="stable")
    return [regions[i] for i in order]


def _window_starts(hours: int, window: int) -> list[int]:
    """First hours of windows of ``window`` hours (at most ``hours``) that overlap by half
    and cover all ``hours``."""
    firsts = list(range(0, max(hours - window, 0) + 1, max(window // 2, 1)))
    if firsts[-1] + window < hours:
        firsts.append(hours - window)
    return firsts


def _bands(arrays: MarketArrays, scale: Scale,
           rng: np.random.Generator) -> list[tuple[np.ndarray, int, int]]:
    """Every pool, in random groups of ``scale.pools``, over windows of ``scale.window_h``
    hours that overlap by half, in random order."""
    window = min(scale.window_h, arrays.hours)
    regions = []
    for h0 in _window_starts(arrays.hours, window):
        perm = rng.permutation(arrays.pools)
        for k in range(0, arrays.pools, scale.pools):
            regions.append((np.sort(perm[k:k + scale.pools]).astype(np.int64), h0, h0 + window))
    return [regions[i] for i in rng.permutation(len(regions))]


def _shared_bids(cands: Candidates, arrays: MarketArrays, profitable: np.ndarray) -> np.ndarray:
    """(P, P) how many bids have a profitable candidate in both pools (0 on the diagonal)."""
    eligible = np.zeros((len(arrays.bid_ids), arrays.pools))
    eligible[cands.bid[profitable], cands.pool[profitable]] = 1.0
    shared = eligible.T @ eligible
    np.fill_diagonal(shared, 0.0)
    return shared


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

    Two phases: regions of one GPU type in order of unmet demand, with moves limited to
    ``allowed``, until ``STALE_SWEEP`` neighbourhoods in a row bring nothing; then every
    profitable candidate is open, a pool's partner may be of another GPU type (bids move
    between types), and regions come in a fresh random order each sweep, until a whole
    sweep brings nothing or the time is up. Why: the limited moves improve fastest early,
    but their local optimum is reached well before the time limit (at L in about 500 s, at
    M in 50 s, 7-8 % below the bound), while wider moves still find better clearings.

    Should time be left then, the neighbourhoods grow level by level (:meth:`Scale.grown`:
    twice the pools, 1.5 times the window, 2.5 times the time limit), every pool in random
    groups (:func:`_bands`), each level until a whole sweep brings nothing, up to one
    neighbourhood that is the whole market. Why: on a 250-bid market of 11 pools the second
    phase stalled at 126,673 EUR, 1.1 % below what HiGHS found on the whole model in 400 s
    (128,054), and that better clearing keeps only 60 of 160 placements and moves 53 bids to
    another pool: moves that pairs of pools cannot make.
    """
    deadline = time.perf_counter() + seconds
    rng = np.random.default_rng(options.seed)
    workers = search_workers(options, emissions_cap_kg)
    if workers > 1:
        options = replace(options, threads=1)  # one core per worker
    with _executor(workers) as executor:
        search = _Search(cands, arrays, net, np.asarray(chosen, dtype=np.int64), options,
                         carbon_price_eur_per_t, emissions_cap_kg,
                         net if rank is None else rank, deadline, executor, workers)
        profitable = net > 0 if allowed is None else (net > 0) & allowed
        stale = 0

        def narrow_stop(better: bool) -> bool:
            nonlocal stale
            stale = 0 if better else stale + 1
            return stale >= STALE_SWEEP

        while not search.out_of_time() and stale < STALE_SWEEP:
            search.sweep(_neighbourhoods(cands, arrays, net, profitable, search.placed_bid(),
                                         rng), profitable, narrow_stop)
        profitable = net > 0
        shared = _shared_bids(cands, arrays, profitable)
        narrow, narrow_better = search.n, search.better
        swept = False

        def wide_stop(better: bool) -> bool:
            nonlocal swept
            swept = swept and not better
            return False

        while not search.out_of_time() and not swept:
            regions = _neighbourhoods(cands, arrays, net, profitable, search.placed_bid(), rng,
                                      shared)
            swept = True
            search.sweep([regions[i] for i in rng.permutation(len(regions))], profitable,
                         wide_stop)
        wide, wide_better = search.n - narrow, search.better - narrow_better
        before_eur = float(net[search.chosen].sum())
        while not search.out_of_time() and not search.scale.covers(arrays):
            search.scale = search.scale.grown(arrays)
            swept = False
            while not search.out_of_time() and not swept:
                swept = True
                search.sweep(_bands(arrays, search.scale, rng), profitable, wide_stop)
    # Fill first: a bid moved to a better place may take the gap an unplaced one needed
    # (relocation alone never lowers welfare, but it can strand a bid the fill would place).
    moved, relocated = relocate(cands, arrays, net,
                                fill(cands, arrays, net, search.chosen, emissions_cap_kg),
                                emissions_cap_kg)
    filled = fill(cands, arrays, net, moved, emissions_cap_kg)
    grown = search.n - narrow - wide
    return filled, replace(search.stats(), wide=wide, wide_improvements=wide_better,
                           grown=grown,
                           grown_improvements=search.better - narrow_better - wide_better,
                           grown_gain_eur=float(net[search.chosen].sum()) - before_eur,
                           level=search.scale if grown else None,
                           relocated=relocated, filled=filled.size - search.chosen.size,
                           workers=workers)


def relocate(cands: Candidates, arrays: MarketArrays, net: np.ndarray, chosen: np.ndarray,
             emissions_cap_kg: float | None) -> tuple[np.ndarray, int]:
    """``chosen`` with placed bids moved, one at a time, each to its candidate of highest net
    welfare (EUR) that fits beside all the others (and in the emissions room, under a cap);
    over again until a pass moves none, at most ``RELOCATE_PASSES`` passes. Returns the
    clearing and how many moves were made. Welfare only rises: a bid moves only to a
    candidate worth more.

    Why: a neighbourhood moves bids only within its pools and window, so a bid can sit at a
    worse place while a better one is free elsewhere. Measured at L on a 240-s clearing
    (1,257,900 EUR): 251 moves, +936 EUR, in about 0.1 s, after which the fill placed 9 more
    bids (+288 EUR); on a 900-s one (1,272,736 EUR), 28 moves, +175 EUR.
    """
    lo, hi = bid_slices(cands, len(arrays.bid_ids))
    rem = arrays.cap - cands.usage(chosen, arrays.cap.shape)
    room = _room(cands, chosen, emissions_cap_kg)
    out = np.array(chosen, dtype=np.int64)
    moves = 0
    for _ in range(RELOCATE_PASSES):
        moved = 0
        for k, i in enumerate(out.tolist()):
            mine = np.arange(lo[cands.bid[i]], hi[cands.bid[i]])
            better = mine[net[mine] > net[i] + 1e-6]
            if room is not None:
                better = better[cands.emissions_kg[better] - cands.emissions_kg[i] <= room]
            if better.size == 0:
                continue
            p, s, e = cands.pool[i], cands.start[i], cands.start[i] + cands.duration[i]
            rem[p, s:e] += cands.gpus[i]  # its own GPUs are free to it
            fits = better[fits_in(rem, cands, better)]
            if fits.size:
                j = int(fits[np.argmax(net[fits])])
                if room is not None:
                    room -= float(cands.emissions_kg[j] - cands.emissions_kg[i])
                out[k], i, moved = j, j, moved + 1
            take_up(rem, cands, i)
        moves += moved
        if moved == 0:
            break
    return np.sort(out), moves


def fill(cands: Candidates, arrays: MarketArrays, net: np.ndarray, chosen: np.ndarray,
         emissions_cap_kg: float | None) -> np.ndarray:
    """``chosen`` plus, greedily by net value, any unplaced bid's candidate that still fits.

    Why: neighbourhoods only free the best-ranked few unplaced bids where they look, so a
    bid that fits a gap elsewhere can be left out (at L, 21 bids worth 1,339 EUR after a
    180 s search).
    """
    placed = _placed(cands, arrays, chosen)
    order = np.flatnonzero((net > 0) & ~placed[cands.bid])
    order = order[np.argsort(-net[order], kind="stable")]
    residual = arrays.cap - cands.usage(chosen, arrays.cap.shape)
    extra = ordered_greedy(cands, replace(arrays, cap=residual), order, net,
                           _room(cands, chosen, emissions_cap_kg))
    return np.sort(np.concatenate([chosen, extra]))


def _placed(cands: Candidates, arrays: MarketArrays, chosen: np.ndarray) -> np.ndarray:
    """(B,) whether each bid has a placement among ``chosen``."""
    placed = np.zeros(len(arrays.bid_ids), dtype=bool)
    placed[cands.bid[chosen]] = True
    return placed


def _room(cands: Candidates, chosen: np.ndarray, emissions_cap_kg: float | None) -> float | None:
    """The emissions (kg) the cap leaves beside ``chosen``; None without a cap."""
    if emissions_cap_kg is None:
        return None
    return emissions_cap_kg - float(cands.emissions_kg[chosen].sum())


@dataclass(frozen=True, slots=True)
class _Job:
    """One neighbourhood ready to solve: its pools and freed bids (locked while it is being
    solved), the candidates modelled (``sub``), the freed bids' current placements
    (``current``, also the warm start) and the model's arrays."""

    pools: np.ndarray
    freed: np.ndarray
    sub: np.ndarray
    current: np.ndarray
    formulation: Formulation
    formulate_s: float


@dataclass(frozen=True, slots=True)
class _Solved:
    """A solved neighbourhood: the chosen positions in its ``sub``, and seconds per phase."""

    chosen: np.ndarray
    build_s: float
    handover_s: float
    solve_s: float


def _solve(f: Formulation, carbon_price_eur_per_t: float, options: SolveOptions,
           time_limit_s: float, warm: np.ndarray) -> _Solved:
    """Build one neighbourhood's Pyomo model and solve it by HiGHS from ``warm`` (positions).

    Runs in a worker process when the search has several (so only arrays travel), else
    inline.
    """
    started = time.perf_counter()
    model = build_model(f, carbon_price_eur_per_t)
    built = time.perf_counter()
    solver = PyomoHighs(model, options, time_limit_s, 1e-6)
    result = solver.solve(warm)
    return _Solved(result.chosen, built - started, solver.handover_s,
                   result.solve_s + result.extract_s)


class _Inline(Executor):
    """Runs each job at once in this process: the one-worker search, with the same driver."""

    def submit(self, fn: Callable[..., _T], /, *args: object,
               **kwargs: object) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever reads the future, as a pool would
            future.set_exception(exc)
        return future


def search_workers(options: SolveOptions, emissions_cap_kg: float | None) -> int:
    """How many neighbourhoods are solved at once: ``options.search_workers``, else one per
    CPU this process may use; always one under an emissions cap, which couples every
    neighbourhood through the room it leaves."""
    if emissions_cap_kg is not None:
        return 1
    if options.search_workers is not None:
        return max(int(options.search_workers), 1)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(min(cpus, MAX_WORKERS), 1)


def _executor(workers: int) -> Executor:
    # Spawned, not forked: HiGHS keeps a thread pool, and a forked copy of a process with
    # threads may deadlock.
    if workers == 1:
        return _Inline()
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


class _Search:
    """The incumbent and its statistics while neighbourhoods are solved, up to ``workers``
    at once.

    Neighbourhoods solved at the same time never share a pool or a freed bid, so each one's
    result is still feasible joined with whatever the others changed meanwhile: capacity is
    per pool, and a bid moves only in the one neighbourhood that freed it.
    """

    def __init__(self, cands: Candidates, arrays: MarketArrays, net: np.ndarray,
                 chosen: np.ndarray, options: SolveOptions, carbon_price_eur_per_t: float,
                 emissions_cap_kg: float | None, score: np.ndarray, deadline: float,
                 executor: Executor, workers: int) -> None:
        self.cands, self.arrays, self.net, self.chosen = cands, arrays, net, chosen
        self.options, self.price, self.cap_kg = options, carbon_price_eur_per_t, emissions_cap_kg
        self.score, self.deadline = score, deadline
        self.executor, self.workers = executor, workers
        self.busy_pool = np.zeros(arrays.pools, dtype=bool)
        self.busy_bid = np.zeros(len(arrays.bid_ids), dtype=bool)
        self.n = self.better = 0
        self.build_s = self.handover_s = self.solve_s = 0.0
        self.largest = ModelSize(0, 0, 0)
        self.scale = Scale()

    def out_of_time(self) -> bool:
        return self.deadline - time.perf_counter() <= 0.5

    def placed_bid(self) -> np.ndarray:
        return _placed(self.cands, self.arrays, self.chosen)

    def stats(self) -> SearchStats:
        return SearchStats(self.n, self.better, self.largest, self.build_s, self.handover_s,
                           self.solve_s)

    def sweep(self, regions: list[tuple[np.ndarray, int, int]], profitable: np.ndarray,
              stop: Callable[[bool], bool]) -> None:
        """Solve ``regions`` in order, up to ``workers`` at once (a region waits while one of
        its pools is being solved), taking each result as it comes; after each, ``stop(it
        raised welfare)`` says whether to start no more. Returns once every started
        neighbourhood is in, at the latest about the deadline."""
        pending = list(regions)
        running: dict[Future[_Solved], _Job] = {}
        halted = False
        while True:
            i = 0
            while (not halted and len(running) < self.workers and i < len(pending)
                   and not self.out_of_time()):
                if self.busy_pool[pending[i][0]].any():
                    i += 1
                    continue
                job = self._prepare(pending.pop(i), profitable)
                if job is None:
                    halted = stop(False)
                    continue
                left = self.deadline - time.perf_counter()
                # ``sub`` is sorted and holds ``current``: the warm start's positions in it.
                running[self.executor.submit(
                    _solve, job.formulation, self.price, self.options,
                    min(self.scale.time_limit_s, left - 0.25),
                    np.searchsorted(job.sub, job.current))] = job
                self.busy_pool[job.pools] = True
                self.busy_bid[job.freed] = True
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                self.busy_pool[job.pools] = False
                self.busy_bid[job.freed] = False
                better = self._merge(job, future.result())
                halted = stop(better) or halted

    def _prepare(self, region: tuple[np.ndarray, int, int], profitable: np.ndarray) -> _Job | None:
        """One region's model (module docstring); None when there is nothing to decide."""
        cands, arrays, net, chosen, score = (self.cands, self.arrays, self.net, self.chosen,
                                             self.score)
        pools, h0, h1 = region
        placed_bid = self.placed_bid()
        in_pools = np.isin(cands.pool, pools)
        overlap = in_pools & (cands.start < h1) & (cands.start + cands.duration > h0)
        # Moves start inside the window: long jobs starting earlier would make the model
        # several times bigger for little gain.
        region_ = in_pools & (cands.start >= h0) & (cands.start < h1) & profitable
        freed_bids = np.zeros(len(arrays.bid_ids), dtype=bool)
        freed_bids[cands.bid[chosen[overlap[chosen]]]] = True
        # Unplaced bids being decided in another neighbourhood wait for it.
        waiting = np.flatnonzero(region_ & ~placed_bid[cands.bid] & ~self.busy_bid[cands.bid])
        if waiting.size:
            best = np.full(len(arrays.bid_ids), -np.inf)
            np.maximum.at(best, cands.bid[waiting], score[waiting])
            hopeful = np.flatnonzero(np.isfinite(best))
            hopeful = hopeful[np.argsort(-best[hopeful], kind="stable")[:self.scale.max_new_bids]]
            freed_bids[hopeful] = True
        fixed = chosen[~freed_bids[cands.bid[chosen]]]
        current = chosen[freed_bids[cands.bid[chosen]]]
        # The freed bids may move anywhere in the region, or stay where they are.
        sub = np.union1d(np.flatnonzero(region_ & freed_bids[cands.bid]), current)
        if sub.size > self.scale.max_variables:
            keep = np.argsort(-net[sub], kind="stable")[:self.scale.max_variables]
            sub = np.union1d(sub[keep], current)
        if sub.size == 0:
            return None
        started = time.perf_counter()
        residual = arrays.cap - cands.usage(fixed, arrays.cap.shape)
        f = formulate(cands.subset(sub), replace(arrays, cap=residual),
                      _room(cands, fixed, self.cap_kg))
        return _Job(pools, np.flatnonzero(freed_bids), sub, current, f,
                    time.perf_counter() - started)

    def _merge(self, job: _Job, solved: _Solved) -> bool:
        """Take a solved neighbourhood's placements when they raise welfare."""
        self.n += 1
        self.build_s += job.formulate_s + solved.build_s
        self.handover_s += solved.handover_s
        self.solve_s += solved.solve_s
        f = job.formulation
        if f.nonzeros > self.largest.nonzeros:
            self.largest = ModelSize(f.variables, f.constraints, f.nonzeros)
        picked = job.sub[solved.chosen]
        if float(self.net[picked].sum()) <= float(self.net[job.current].sum()) + 1e-6:
            return False
        # Only this neighbourhood could move its freed bids, so ``current`` is still theirs.
        keep = ~np.isin(self.chosen, job.current)
        self.chosen = np.sort(np.concatenate([self.chosen[keep], picked]))
        self.better += 1
        return True

"""The neighbourhood search's three phases and its final relocation and fill, on hand-solved
markets."""

from __future__ import annotations

import numpy as np
import pytest

from optim.candidates import Candidates
from optim.clearing import Round
from optim.lns import Scale, _bands, fill, improve, relocate, search_workers
from optim.options import SolveOptions
from tests.optim.kit import Bid, Kit, Site
from tests.optim.test_clearing import hand_market

OPTIMUM_EUR = 159.48  # hand_market's unique optimum (see there)


def _round() -> tuple[Round, np.ndarray]:
    r = Round(hand_market().market())
    return r, r.cands.net_eur(100.0)


def _feasible(r: Round, chosen: np.ndarray) -> bool:
    c: Candidates = r.cands
    one_each = np.unique(c.bid[chosen]).size == chosen.size
    return one_each and bool((c.usage(chosen, r.arrays.cap.shape) <= r.arrays.cap).all())


@pytest.mark.parametrize("workers", [1, 2])
def test_search_leaves_the_allowed_moves_once_they_are_spent(workers: int) -> None:
    # Allowed moves: only the worse clearing's places (149.52 EUR). The first phase cannot
    # leave them; the second opens every candidate and finds the optimum.
    r, net = _round()
    c, a = r.cands, r.arrays
    worse = {("B1", "KR1", 0), ("B2", "KR1", 0), ("B3", "CA1", 0)}
    site = {p: s for p, s in enumerate(a.pool_site)}
    idx = [i for i in range(len(c)) if (a.bid_ids[c.bid[i]], site[int(c.pool[i])],
                                        int(c.start[i])) in worse]
    allowed = np.zeros(len(c), dtype=bool)
    allowed[idx] = True
    start = np.zeros(0, dtype=np.int64)
    chosen, stats = improve(c, a, net, start, SolveOptions(search_workers=workers), 100.0,
                            None, 20.0, allowed=allowed)
    assert _feasible(r, chosen)
    assert float(net[chosen].sum()) == pytest.approx(OPTIMUM_EUR)
    assert stats.neighbourhoods >= 2
    assert stats.workers == workers


def test_workers_default_to_the_cpus_and_are_one_under_an_emissions_cap() -> None:
    assert search_workers(SolveOptions(search_workers=3), None) == 3
    assert search_workers(SolveOptions(search_workers=3), 1000.0) == 1  # the cap couples all
    assert search_workers(SolveOptions(), None) >= 1


def test_fill_places_what_still_fits_and_nothing_that_does_not() -> None:
    r, net = _round()
    c, a = r.cands, r.arrays
    optimum = r.clear().placements
    key = {(a.bid_ids[b], a.pool_site[p], int(s)): i
           for i, (b, p, s) in enumerate(zip(c.bid, c.pool, c.start, strict=True))}
    best = np.array(sorted(
        key[(row["bid_id"], row["site_id"], int(row["start_utc"].hour))]
        for row in optimum.iter_rows(named=True)))
    without_b3 = best[[a.bid_ids[b] != "B3" for b in c.bid[best]]]
    filled = fill(c, a, net, without_b3, None)
    assert _feasible(r, filled)
    assert float(net[filled].sum()) == pytest.approx(OPTIMUM_EUR)  # B3 fits back at KR 0-2
    assert np.array_equal(fill(c, a, net, best, None), best)  # nothing else fits
    # Under an emissions cap with no room left, nothing is added.
    spent = float(c.emissions_kg[without_b3].sum())
    assert np.array_equal(fill(c, a, net, without_b3, spent), without_b3)


def test_relocate_moves_bids_to_better_free_places_only() -> None:
    # B1 at CA 0-3, B3 at KR H100 0-2 and B2 at KR A100 (54.00 EUR): KR H100 2-6 is free and
    # B2 is worth 63.20 there; B3 would be worth more at CA, but B1 is there. One move gives
    # the optimum, and at the optimum nothing moves.
    r, net = _round()
    c, a = r.cands, r.arrays
    where = {(a.bid_ids[b], a.pool_site[p], a.pool_type[p], int(s)): i
             for i, (b, p, s) in enumerate(zip(c.bid, c.pool, c.start, strict=True))}
    start = np.array(sorted([where[("B1", "CA1", "H100", 0)], where[("B3", "KR1", "H100", 0)],
                             where[("B2", "KR1", "A100", 0)]]))
    moved, moves = relocate(c, a, net, start, None)
    assert moves == 1 and _feasible(r, moved)
    assert float(net[moved].sum()) == pytest.approx(OPTIMUM_EUR)
    assert where[("B2", "KR1", "H100", 2)] in moved
    again, none = relocate(c, a, net, moved, None)
    assert none == 0 and np.array_equal(again, moved)
    # Without B1 in place, B3 takes CA too: then B1 no longer fits anywhere, which is why
    # the search fills before it relocates.
    without_b1 = np.array(sorted([where[("B3", "KR1", "H100", 0)],
                                  where[("B2", "KR1", "A100", 0)]]))
    moved, moves = relocate(c, a, net, without_b1, None)
    assert moves == 2 and where[("B3", "CA1", "H100", 0)] in moved
    assert np.array_equal(fill(c, a, net, moved, None), moved)


def test_relocate_keeps_to_the_emissions_room() -> None:
    # X runs at the clean, dear site; the dirty one is 2 EUR cheaper for its 8 GPU-hours but
    # emits 7.2 kg more. Without a cap X moves; with a cap it already meets, it stays.
    kit = Kit(hours=1, sites=[Site("D1", "KR", "KR", {"H100": 8}),
                              Site("C1", "CA-ON", "CA", {"H100": 8}, member="CA")],
              bids=[Bid("X", "H100:1", 8, 0, 1, 40.0)],
              intensity={"KR": [900.0], "CA-ON": [0.0]},
              price={"KR": [0.0], "CA-ON": [250.0]}, carbon_price=0.0)
    r = Round(kit.market())
    c, a = r.cands, r.arrays
    net = c.net_eur(0.0)
    clean = np.array([i for i in range(len(c)) if a.pool_site[c.pool[i]] == "C1"])
    dirty, moves = relocate(c, a, net, clean, None)
    assert moves == 1 and a.pool_site[c.pool[dirty[0]]] == "D1"
    assert float(net[dirty].sum()) > float(net[clean].sum())
    cap = float(c.emissions_kg[clean].sum())
    assert relocate(c, a, net, clean, cap)[1] == 0


def _rotation() -> tuple[Round, np.ndarray, np.ndarray]:
    """Three 8-GPU pools (A, B, C) for one hour, asks 1, 1 and 1.1 EUR per GPU-hour; X may
    run at A or B and Y at B or C (value 40 each), W only at A (value 30). The start, X at A
    and Y at B, is worth 32 + 32 = 64 EUR. The optimum, W at A, X at B and Y at C, is worth
    22 + 32 + 31.2 = 85.2 EUR: all three move at once. Any two pools alone can only drop a
    bid worth 32 to place W, worth 22, or move Y to where it is worth less."""
    kit = Kit(hours=1, sites=[Site("A1", "KR", "KR", {"H100": 8}),
                              Site("B1", "CA-ON", "CA", {"H100": 8}, member="CA"),
                              Site("C1", "DE", "DE", {"H100": 8}, ask=1.1, member="DE")],
              bids=[Bid("X", "H100:1", 8, 0, 1, 40.0, allowed="KR; CA"),
                    Bid("Y", "H100:1", 8, 0, 1, 40.0, allowed="CA; DE"),
                    Bid("W", "H100:1", 8, 0, 1, 30.0, allowed="KR")],
              intensity={"KR": [0.0], "CA-ON": [0.0], "DE": [0.0]})
    r = Round(kit.market())
    c, a = r.cands, r.arrays
    where = {(a.bid_ids[b], a.pool_site[p]): i
             for i, (b, p) in enumerate(zip(c.bid, c.pool, strict=True))}
    start = np.array(sorted([where[("X", "A1")], where[("Y", "B1")]]), dtype=np.int64)
    return r, c.net_eur(0.0), start


def test_grown_neighbourhoods_find_what_two_pools_cannot() -> None:
    r, net, start = _rotation()
    assert float(net[start].sum()) == pytest.approx(64.0)
    chosen, stats = improve(r.cands, r.arrays, net, start, SolveOptions(search_workers=1), 0.0,
                            None, 60.0)
    assert _feasible(r, chosen)
    assert float(net[chosen].sum()) == pytest.approx(85.2)
    # Pairs of pools found nothing; the first grown level (all three pools) found it all,
    # and the search stopped there: a neighbourhood that is the whole market cannot grow.
    assert stats.improvements == stats.grown_improvements == 1
    assert stats.level is not None and (stats.level.pools, stats.level.window_h) == (3, 1)
    assert stats.grown_gain_eur == pytest.approx(85.2 - 64.0)


def test_bands_put_every_pool_in_each_window_once() -> None:
    r, _ = _round()
    a = r.arrays
    scale = Scale(pools=1, window_h=4)
    regions = _bands(a, scale, np.random.default_rng(0))
    windows = sorted({(h0, h1) for _, h0, h1 in regions})
    assert windows == [(0, 4), (2, 6)]  # overlapping by half, the last one ending at hour 6
    for h0, h1 in windows:
        pools = np.concatenate([p for p, g0, g1 in regions if (g0, g1) == (h0, h1)])
        assert sorted(pools.tolist()) == list(range(a.pools))
    grown = scale.grown(a)
    assert (grown.pools, grown.window_h) == (min(2, a.pools), 6)
    assert grown.time_limit_s > scale.time_limit_s and grown.max_variables > scale.max_variables
    assert grown.covers(a) == (a.pools <= 2) and Scale(a.pools, a.hours).covers(a)

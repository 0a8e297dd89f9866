"""The neighbourhood search's two phases and its final fill, on the hand-solved market."""

from __future__ import annotations

import numpy as np
import pytest

from optim.candidates import Candidates
from optim.clearing import Round
from optim.lns import fill, improve, search_workers
from optim.options import SolveOptions
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

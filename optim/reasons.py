"""Why each rejected bid was rejected, in the order the checks apply.

* ``no_site`` — no site in the bid's allowed jurisdictions has a GPU type it can use;
* ``no_window`` — such sites exist, but no start between release and deadline, inside the
  window, has the bid's GPUs free for the whole duration (even with nothing else placed);
* ``below_cost`` — every feasible placement costs more than the bid's value (energy + asks +
  carbon price × emissions); names the cheapest;
* ``emissions_cap`` — a placement still fits in the capacity left, but the round's emissions
  cap is used up;
* ``not_selected`` — a profitable placement still fits: the solver stopped at a non-zero
  gap before finding it (never happens at a proven optimum);
* ``outbid`` — every profitable placement needs capacity that went to bids of higher net
  value; names the full (site, GPU type, hours) of its best placements.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from optim.candidates import Candidates, MarketArrays
from optim.greedy import bid_slices

MAX_NAMED = 3


def _hour(start: datetime, offset: int) -> str:
    return f"{start + timedelta(hours=offset):%Y-%m-%dT%H:%MZ}"


def _span(start: datetime, first: int, last: int) -> str:
    """Hours ``first..last`` as a half-open UTC interval."""
    return f"{_hour(start, first)}–{_hour(start, last + 1)}"


def _full_hours(hours: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive hours as (first, last)."""
    runs: list[tuple[int, int]] = []
    for h in hours.tolist():
        if runs and h == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], h)
        else:
            runs.append((h, h))
    return runs


def rejection_reasons(
    cands: Candidates, arrays: MarketArrays, chosen: np.ndarray, net_eur: np.ndarray,
    has_pool: np.ndarray, window_start: datetime, emissions_room_kg: float | None,
) -> pl.DataFrame:
    """``bid_id``, ``reason`` (a code above) and ``detail`` for every bid not in ``chosen``.

    ``has_pool[b]`` says whether bid b has any allowed site with one of its GPU types.
    """
    rem = arrays.cap - cands.usage(chosen, arrays.cap.shape)
    placed = np.zeros(len(arrays.bid_ids), dtype=bool)
    placed[cands.bid[chosen]] = True
    lo, hi = bid_slices(cands, len(arrays.bid_ids))
    rows: list[tuple[str, str, str]] = []
    for b in np.flatnonzero(~placed).tolist():
        bid_id = arrays.bid_ids[b]
        idx = np.arange(lo[b], hi[b])
        if not has_pool[b]:
            rows.append((bid_id, "no_site", "no site in the allowed jurisdictions has any of "
                         "the bid's GPU types"))
            continue
        if idx.size == 0:
            rows.append((bid_id, "no_window", f"no start between release and deadline inside "
                         f"the window has {arrays.bid_gpus[b]} GPUs of an allowed type free "
                         "for the whole duration at any allowed site"))
            continue
        profitable = idx[net_eur[idx] > 0]
        if profitable.size == 0:
            cheapest = idx[np.argmax(net_eur[idx])]
            cost = cands.value_eur[cheapest] - net_eur[cheapest]
            rows.append((bid_id, "below_cost", f"value {cands.value_eur[cheapest]:.2f} EUR is "
                         f"below the cheapest feasible cost {cost:.2f} EUR "
                         f"({arrays.pool_site[cands.pool[cheapest]]}/"
                         f"{arrays.pool_type[cands.pool[cheapest]]} from "
                         f"{_hour(window_start, int(cands.start[cheapest]))})"))
            continue
        fits = [i for i in profitable.tolist() if rem[cands.pool[i], cands.start[i]:
                cands.start[i] + cands.duration[i]].min() >= cands.gpus[i]]
        if fits:
            if emissions_room_kg is not None and min(cands.emissions_kg[fits]) > emissions_room_kg:
                rows.append((bid_id, "emissions_cap", "a profitable placement still fits in "
                             "capacity but the round's emissions cap is used up"))
            else:
                rows.append((bid_id, "not_selected", "a profitable placement still fits in the "
                             "capacity left; the solver stopped before finding it (see gap)"))
            continue
        best = profitable[np.argsort(-net_eur[profitable], kind="stable")]
        named: list[str] = []
        seen: set[int] = set()
        for i in best.tolist():
            p = int(cands.pool[i])
            if p in seen:
                continue
            seen.add(p)
            s, d, g = int(cands.start[i]), int(cands.duration[i]), int(cands.gpus[i])
            full = s + np.flatnonzero(rem[p, s:s + d] < g)
            spans = ", ".join(_span(window_start, a, z) for a, z in _full_hours(full))
            named.append(f"{arrays.pool_site[p]}/{arrays.pool_type[p]} {spans}")
            if len(named) == MAX_NAMED:
                break
        rows.append((bid_id, "outbid", "capacity went to bids of higher net value; full: "
                     + "; ".join(named)))
    return pl.DataFrame(rows, schema={"bid_id": pl.String, "reason": pl.String,
                                      "detail": pl.String}, orient="row")

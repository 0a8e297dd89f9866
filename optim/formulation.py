"""The clearing problem as arrays: one binary per modelled candidate, and its rows.

Maximise ``Σ (value − energy cost − asks − carbon price × kg / 1000) x_c`` subject to

* **one placement per bid** — ``Σ_{c of bid b} x_c <= 1`` (only for bids with several
  modelled candidates; a single binary's own bound already says it);
* **capacity** — for every (pool, hour) ``Σ_{c running then} gpus_c x_c <= gpus_available``,
  written only where the modelled candidates could overfill it (other rows can never bind);
* **emissions cap** (optional) — ``Σ kg_c x_c <= cap_kg``.

Constants sit on the right-hand side, so each row's dual is a price in the row's units
(EUR per GPU-hour for capacity). Both the Pyomo model (:mod:`optim.model`) and the raw
highspy build of the benchmark (:mod:`optim.solver`) are built from this one description,
so they are the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optim.candidates import Candidates, MarketArrays


@dataclass(frozen=True, slots=True)
class RowBlock:
    """Rows in CSR form: row r holds ``index[start[r]:start[r+1]]`` with ``coef`` alike."""

    start: np.ndarray
    index: np.ndarray  # column (modelled-candidate) positions
    coef: np.ndarray
    upper: np.ndarray
    key: np.ndarray  # what each row is about: bid index, or pool * hours + hour

    @property
    def rows(self) -> int:
        return int(self.upper.shape[0])

    @property
    def nonzeros(self) -> int:
        return int(self.index.shape[0])


@dataclass(frozen=True, slots=True)
class Formulation:
    """The model over ``cands`` (the modelled candidates) and its three row families."""

    cands: Candidates
    hours: int
    one_per_bid: RowBlock
    capacity: RowBlock
    emissions_cap_kg: float | None

    @property
    def variables(self) -> int:
        return len(self.cands)

    @property
    def constraints(self) -> int:
        return self.one_per_bid.rows + self.capacity.rows + (self.emissions_cap_kg is not None)

    @property
    def nonzeros(self) -> int:
        extra = self.variables if self.emissions_cap_kg is not None else 0
        return self.one_per_bid.nonzeros + self.capacity.nonzeros + extra

    def objective(self, carbon_price_eur_per_t: float) -> np.ndarray:
        """Objective coefficient of each binary (EUR of welfare if accepted)."""
        return self.cands.net_eur(carbon_price_eur_per_t)


def _csr(keys: np.ndarray, cols: np.ndarray, coef: np.ndarray, upper_of: np.ndarray,
         keep_key: np.ndarray) -> RowBlock:
    sel = keep_key[keys]
    keys, cols, coef = keys[sel], cols[sel], coef[sel]
    order = np.lexsort((cols, keys))
    keys, cols, coef = keys[order], cols[order], coef[order]
    uniq, first = np.unique(keys, return_index=True)
    start = np.r_[first, keys.shape[0]].astype(np.int64)
    return RowBlock(start=start, index=cols.astype(np.int64), coef=coef.astype(float),
                    upper=upper_of[uniq].astype(float), key=uniq.astype(np.int64))


def formulate(cands: Candidates, arrays: MarketArrays,
              emissions_cap_kg: float | None = None) -> Formulation:
    """The rows of the model over ``cands`` (see the module docstring)."""
    n = len(cands)
    cols = np.arange(n, dtype=np.int64)
    bids = len(arrays.bid_ids)
    per_bid = np.bincount(cands.bid, minlength=bids)
    one = _csr(cands.bid, cols, np.ones(n), np.ones(bids), per_bid >= 2)

    hours = arrays.hours
    d = cands.duration
    col = np.repeat(cols, d)
    offset = np.arange(col.shape[0]) - np.repeat(np.cumsum(d) - d, d)
    key = np.repeat(cands.pool * hours, d) + np.repeat(cands.start, d) + offset
    coef = np.repeat(cands.gpus, d).astype(float)
    cap = arrays.cap.ravel()
    demand = np.bincount(key, weights=coef, minlength=cap.shape[0])
    capacity = _csr(key, col, coef, cap, demand > cap)
    return Formulation(cands=cands, hours=hours, one_per_bid=one, capacity=capacity,
                       emissions_cap_kg=emissions_cap_kg)

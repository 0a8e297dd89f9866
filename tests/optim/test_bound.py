"""The Lagrangian bound's subgradient stops once it stalls, not only at its step cap."""

from __future__ import annotations

import numpy as np
import pytest

import optim.bound as bound_module
from gridbridge.market import MakerOptions, make_market
from optim.bound import lagrangian_bound
from optim.candidates import enumerate_candidates, market_arrays
from optim.greedy import carbon_blind_greedy
from tests.conftest import BRIDGE_2023 as DATASET


def _bound(monkeypatch: pytest.MonkeyPatch, stall_steps: int) -> bound_module.LagrangianBound:
    monkeypatch.setattr(bound_module, "STALL_STEPS", stall_steps)
    market = make_market(DATASET, MakerOptions(week="2023-W27", bids=150, sites=6, hours=72,
                                               seed=3))
    arrays = market_arrays(market)
    cands = enumerate_candidates(market, arrays)
    net = cands.net_eur(85.0)
    positive = np.flatnonzero(net > 0)
    greedy = carbon_blind_greedy(cands, arrays)
    return lagrangian_bound(cands.subset(positive), arrays, net[positive],
                            emissions_cap_kg=None, target_eur=float(net[greedy].sum()),
                            iterations=20_000)


def test_a_stalled_subgradient_stops_early_and_gives_up_almost_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stopped = _bound(monkeypatch, bound_module.STALL_STEPS)
    patient = _bound(monkeypatch, 10**9)  # the stall rule never fires
    # The same steps up to the stop, so the longer run's best bound can only be lower.
    assert stopped.iterations < patient.iterations
    assert patient.bound_eur <= stopped.bound_eur
    assert stopped.bound_eur <= patient.bound_eur * (1 + 10 * bound_module.STALL_TOL)

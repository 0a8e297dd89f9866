"""What the Lagrangian bound charges each candidate, against a plain loop over its hours."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optim.bound import _by_size, _charges, _divisors
from optim.clearing import Round
from tests.optim.kit import Kit, small_markets


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_markets(), st.integers(0, 2**32 - 1))
def test_charges_are_the_row_prices_over_each_candidates_hours(kit: Kit, seed: int) -> None:
    r = Round(kit.market())
    c, cap = r.cands, r.arrays.cap
    rng = np.random.default_rng(seed)
    divisors = _divisors(cap)
    pi = rng.uniform(0.0, 3.0, cap.shape)
    rho = rng.uniform(0.0, 50.0, divisors.shape)
    sigma = float(rng.uniform(0.0, 0.2))
    expected = np.array([
        sigma * c.emissions_kg[i] + sum(
            c.gpus[i] * pi[c.pool[i], h]
            + sum(np.floor(c.gpus[i] / divisors[k, c.pool[i], h]) * rho[k, c.pool[i], h]
                  for k in range(divisors.shape[0]))
            for h in range(c.start[i], c.start[i] + c.duration[i]))
        for i in range(len(c))
    ])
    # Grouped by gang size once (as the subgradient keeps it) or on each call.
    kept = _charges(c, pi, rho, divisors, sigma, _by_size(c, cap.shape[1]))
    np.testing.assert_allclose(kept, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(_charges(c, pi, rho, divisors, sigma), kept)

"""The neighbourhood search with several worker processes, on a made market with many pools.

Neighbourhoods solved at once must never share a pool or a freed bid (optim.lns); if they
did, their merged placements could overfill a pool or place a bid twice, which the
independent checker would catch.
"""

from __future__ import annotations

import pytest

from gridbridge.market import MakerOptions, make_market
from optim.check import check_clearing
from optim.clearing import clear
from optim.options import SolveOptions
from tests.conftest import BRIDGE_2023 as DATASET


@pytest.mark.parametrize("seed", [1, 2])
def test_two_workers_give_a_checked_clearing_no_worse_than_its_start(seed: int) -> None:
    market = make_market(DATASET, MakerOptions(week="2023-W27", bids=200, sites=8, hours=72,
                                               seed=seed))
    c = clear(market, SolveOptions(time_limit_s=12, whole_model_nonzeros=0, search_workers=2,
                                   pricing=False, seed=seed))
    report = check_clearing(market, c.placements, c.rejected, c.summary())
    assert report.ok, report.problems
    assert c.report.method == "neighbourhood_search"
    assert "on 2 worker(s)" in c.report.highs_status
    assert c.report.neighbourhoods > 2
    assert c.totals.welfare_eur >= c.report.warm_start_eur - 1e-6
    assert c.report.bound_eur >= c.totals.welfare_eur - 1e-6

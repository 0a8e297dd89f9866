"""A real exchange for the API fuzzer, holding something for every endpoint to act on.

One ``gridbridge exchange serve`` process on a fresh SQLite file (started once for the fuzz
session; each start costs about two seconds), whose every site reported the 48 hours of
2023-07-03..04 from the bundled W27 market (:func:`tests.exchange.conftest.market_serving`),
and in it:

* a round cleared on two bids, both placed at SG-NSCC-1 (the site of the fuzzed
  ``other_site`` token) for 24 hours, so the result and report endpoints have placements,
  prices and ledger lines to serve and the metering endpoint hours to true up;
* an open round with a bid by each member and one withdrawn bid (so bids can be read,
  amended and withdrawn);
* three open rounds without bids, which only the fuzzed ``POST .../close`` is pointed at (so
  closing them never takes the open round away from the bid endpoints).

The fuzzer (:mod:`tests.fuzz.test_api_fuzz`) reads the schema from the server's own
``/openapi.json``: what is fuzzed is what the exchange publishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis.schemas import BaseSchema

from tests.exchange.conftest import Exchange, _bid, _open, _wait_until_done, market_serving
from tests.exchange.server import sqlite_url

__all__ = ["FuzzMarket"]

#: Bids placed in the open round: (caller, bid_id); the last one is withdrawn.
OPEN_BIDS = (("member_kr", "kr-open"), ("member_de", "de-open"), ("member_kr", "kr-gone"))
#: Bids cleared in the cleared round: (caller, bid_id).
CLEARED_BIDS = (("member_kr", "kr-done"), ("member_de", "de-done"))
#: Empty open rounds the fuzzed ``close`` may close.
CLOSABLE_ROUNDS = 3
#: Every built-in check but ``positive_data_acceptance`` (why: tests/fuzz/test_api_fuzz.py).
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"enabled": False}}})


@dataclass(frozen=True)
class FuzzMarket:
    """The running exchange, its rounds, its bids and its schema."""

    exchange: Exchange
    schema: BaseSchema
    open_round: str
    cleared_round: str
    closable_rounds: tuple[str, ...]
    bid_ids: tuple[str, ...]
    #: The cleared round's placements, as ``GET .../placements`` answers them.
    placements: tuple[dict[str, Any], ...]
    #: site_id -> (zone, GPU types it pools), from ``GET /v1/registry``.
    sites: dict[str, tuple[str, tuple[str, ...]]]

    @property
    def base_url(self) -> str:
        return self.exchange.server.base_url


@pytest.fixture(scope="session")
def fuzz_market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzMarket]:
    """The exchange described in the module doc (SQLite; the backends are compared by the
    exchange's own tests, and twice the server would be twice the fuzzing time)."""
    folder = tmp_path_factory.mktemp("fuzz")
    with market_serving(sqlite_url(folder / "fuzz.db"), folder) as ex:
        cleared = _open(ex)
        for who, bid_id in CLEARED_BIDS:
            # A100 in Singapore is only at SG-NSCC-1, the fuzzed other_site's site.
            _bid(ex, who, cleared, bid_id, gpus=8, value_eur=20000.0,
                 options=[{"gpu_type": "A100", "hours": 24}], allowed_jurisdictions=["SG"])
        closed = ex.client("planner").post(f"/v1/rounds/{cleared}/close")
        assert closed.status_code == 200, closed.text
        done = _wait_until_done(ex, cleared)
        assert done["state"] == "cleared", done["reason"]
        placed = ex.client("planner").get(f"/v1/rounds/{cleared}/placements").json()
        assert {p["bid_id"] for p in placed} == {b for _, b in CLEARED_BIDS}, placed

        open_round = _open(ex)
        for who, bid_id in OPEN_BIDS:
            _bid(ex, who, open_round, bid_id, gpus=8, value_eur=15000.0)
        gone = ex.client("member_kr").delete(f"/v1/rounds/{open_round}/bids/kr-gone")
        assert gone.status_code == 200, gone.text

        closable = tuple(_open(ex) for _ in range(CLOSABLE_ROUNDS))
        schema = schemathesis.openapi.from_url(f"{ex.server.base_url}/openapi.json",
                                               config=CONFIG)
        registry = ex.client("planner").get("/v1/registry").json()
        sites = {s["site_id"]: (s["zone"], tuple(p["gpu_type"] for p in s["pools"]))
                 for s in registry["sites"]}
        yield FuzzMarket(ex, schema, open_round, cleared, closable,
                         tuple(b for _, b in OPEN_BIDS + CLEARED_BIDS), tuple(placed), sites)

"""Build small :class:`optim.market.Market` objects in memory, for hand-solved cases.

Hours are integer offsets from ``T0`` (2023-07-03T00:00Z). Every site gets an 1.0 PUE and no
tariff adder unless told, every GPU type an ``it_kw`` of 1.0 unless told, so a GPU-hour is
1 kWh and energy cost is the zone price / 1000 EUR per GPU-hour: easy sums by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import strategies as st

from gridbridge.bundle import bid_options_table
from optim.market import SCHEMAS, Market, MarketConfig

T0 = datetime(2023, 7, 3, tzinfo=UTC)


def at(hour: int) -> datetime:
    """The UTC hour ``hour`` hours after T0."""
    return T0 + timedelta(hours=hour)


@dataclass
class Site:
    site_id: str
    zone: str
    jurisdiction: str
    pools: dict[str, int | Sequence[int]]  # gpu_type -> GPUs (one count or one per hour)
    ask: float = 1.0  # EUR per GPU-hour, every pool and hour
    pue: float = 1.0
    adder: float = 0.0  # EUR/MWh
    member: str = "KR"


@dataclass
class Bid:
    bid_id: str
    options: str  # e.g. "H100:2;A100:3"
    gpus: int
    release: int
    deadline: int
    value: float
    allowed: str = "*"
    member: str = "KR"


@dataclass
class Kit:
    """A whole market: sites, bids, per-zone hourly intensity and price."""

    hours: int
    sites: list[Site]
    bids: list[Bid]
    intensity: dict[str, Sequence[float]]  # zone -> g/kWh per hour (direct signal)
    price: dict[str, Sequence[float]] = field(default_factory=dict)  # zone -> EUR/MWh
    it_kw: dict[str, float] = field(default_factory=lambda: {"H100": 1.0, "A100": 1.0})
    carbon_price: float = 0.0

    def market(self) -> Market:
        """The validated-shape Market of this kit."""
        config = MarketConfig(
            window_start_utc=T0, window_end_utc=at(self.hours),
            carbon_price_eur_per_t=self.carbon_price, carbon_signal="direct",
        )
        members = pl.DataFrame(
            {"member": ["KR", "CA", "DE"], "name": ["Korea", "Canada", "Germany"],
             "pledge_share": [0.4, 0.3, 0.3]}, schema=SCHEMAS["members"],
        )
        gpus = pl.DataFrame(
            {"gpu_type": list(self.it_kw), "it_kw": list(self.it_kw.values()),
             "board_kw": [0.5] * len(self.it_kw)}, schema=SCHEMAS["gpus"],
        )
        sites = pl.DataFrame(
            [(s.site_id, s.member, s.zone, s.jurisdiction, 0.0, 0.0, s.pue, s.adder)
             for s in self.sites], schema=SCHEMAS["sites"], orient="row",
        )
        capacity = pl.DataFrame(
            [
                (s.site_id, gpu_type, at(h),
                 count if isinstance(count, int) else int(count[h]), s.ask)
                for s in self.sites for gpu_type, count in s.pools.items()
                for h in range(self.hours)
            ],
            schema=SCHEMAS["capacity"], orient="row",
        )
        zones = sorted({s.zone for s in self.sites})
        grid = pl.DataFrame(
            [
                (z, at(h), float(self.intensity[z][h]), float(self.intensity[z][h]) * 1.1,
                 float(self.price.get(z, [0.0] * self.hours)[h]))
                for z in zones for h in range(self.hours)
            ],
            schema=SCHEMAS["grid"], orient="row",
        )
        bids = pl.DataFrame(
            [(b.bid_id, b.member, b.options, b.gpus, at(b.release), at(b.deadline), b.value,
              b.allowed) for b in self.bids],
            schema=SCHEMAS["bids"], orient="row",
        )
        return Market(config=config, members=members, gpus=gpus, sites=sites,
                      capacity=capacity, grid=grid, bids=bids,
                      bid_options=bid_options_table(bids))


@st.composite
def small_markets(draw: st.DrawFn) -> Kit:
    hours = draw(st.integers(3, 6))
    counts = st.integers(0, 3).map(lambda n: 8 * n)
    sites = [
        Site("KR1", "KR", "KR", {"H100": draw(st.lists(counts, min_size=hours, max_size=hours)),
                                 "A100": draw(counts)}, ask=draw(st.sampled_from([0.5, 1.0]))),
        Site("CA1", "CA-ON", "CA", {"H100": draw(counts)}, member="CA",
             pue=draw(st.sampled_from([1.0, 1.5])), adder=draw(st.sampled_from([0.0, 20.0]))),
    ]
    bids = []
    for i in range(draw(st.integers(1, 4))):
        release = draw(st.integers(-1, hours - 1))
        deadline = draw(st.integers(release + 1, hours + 1))
        options = draw(st.sampled_from(["H100:1", "H100:2", "A100:2", "H100:2;A100:3",
                                        "A100:1;H100:3"]))
        bids.append(Bid(f"B{i}", options, draw(st.sampled_from([8, 16])), release, deadline,
                        draw(st.floats(1.0, 80.0)).__round__(2),
                        allowed=draw(st.sampled_from(["*", "KR", "CA", "CA;KR"]))))
    floats = st.lists(st.floats(0.0, 900.0), min_size=hours, max_size=hours)
    prices = st.lists(st.floats(-50.0, 300.0), min_size=hours, max_size=hours)
    return Kit(hours=hours, sites=sites, bids=bids,
               intensity={"KR": draw(floats), "CA-ON": draw(floats)},
               price={"KR": draw(prices), "CA-ON": draw(prices)},
               carbon_price=draw(st.sampled_from([0.0, 85.0, 1000.0])))

"""Every way each bid could run: the market as arrays, and its candidate placements.

A **pool** is one (site, GPU type) pair that has capacity rows. A **candidate** is one
(bid, pool, start hour) such that the pool's site is in the bid's allowed jurisdictions, the
pool's GPU type is one of the bid's options, ``release <= start``, ``start + duration <=
deadline`` and the window, and the pool has at least ``gpus`` GPUs in every hour of
``[start, start + duration)``. Dropping the other triples loses no feasible placement, so a
model over all candidates is the unrestricted market of the issue.

Hours are integer offsets from ``window_start_utc``; an hour without a capacity row has 0
GPUs. Per-GPU hourly figures (units in the names) are summed over a candidate's hours with
prefix sums, so a candidate's totals are exact sums of the hourly terms of DESIGN.md:
``gpus * it_kw * pue`` kWh per hour, that times the zone's intensity / 1000 kg, that times
(zone price + site tariff adder) / 1000 EUR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from optim.errors import MarketInputError
from optim.market import Market

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MarketArrays:
    """The market as dense arrays indexed by pool ``p``, hour ``h`` and bid ``b``.

    Per-GPU hourly figures are for one GPU of the pool's type running one hour: ``kwh`` (kWh,
    facility energy), ``energy_cost_eur`` (EUR), ``emissions_kg`` (kg CO2eq of the market's
    carbon signal) and ``ask_eur`` (EUR).
    """

    hours: int
    pool_site: list[str]
    pool_type: list[str]
    cap: np.ndarray  # (P, H) int64, GPUs available
    ask_eur: np.ndarray  # (P, H)
    kwh: np.ndarray  # (P, H)
    energy_cost_eur: np.ndarray  # (P, H)
    emissions_kg: np.ndarray  # (P, H)
    bid_ids: list[str]
    bid_gpus: np.ndarray  # (B,) int64
    bid_value_eur: np.ndarray  # (B,)
    bid_release: np.ndarray  # (B,) hour offset, may be < 0
    bid_deadline: np.ndarray  # (B,) hour offset, exclusive, may be > hours
    bid_work_h: np.ndarray  # (B,) gpus x shortest option duration

    @property
    def pools(self) -> int:
        """Number of (site, GPU type) pools."""
        return len(self.pool_site)


@dataclass(frozen=True, slots=True)
class Candidates:
    """All candidate placements, one entry per (bid, pool, start), sorted by bid then pool.

    Totals are for the whole job (all its GPUs and hours): ``energy_kwh`` (kWh),
    ``energy_cost_eur`` and ``ask_eur`` (EUR), ``emissions_kg`` (kg CO2eq).
    """

    bid: np.ndarray  # (C,) int64 index into MarketArrays.bid_ids
    pool: np.ndarray  # (C,) int64
    start: np.ndarray  # (C,) int64 hour offset
    duration: np.ndarray  # (C,) int64 hours
    gpus: np.ndarray  # (C,) int64
    value_eur: np.ndarray  # (C,)
    energy_kwh: np.ndarray
    energy_cost_eur: np.ndarray
    ask_eur: np.ndarray
    emissions_kg: np.ndarray

    def __len__(self) -> int:
        return int(self.bid.shape[0])

    def cost_eur(self, carbon_price_eur_per_t: float) -> np.ndarray:
        """Each candidate's full cost (EUR): energy + asks + carbon price x emissions."""
        return self.energy_cost_eur + self.ask_eur + carbon_price_eur_per_t / 1000.0 * (
            self.emissions_kg
        )

    def net_eur(self, carbon_price_eur_per_t: float) -> np.ndarray:
        """Each candidate's contribution to ``welfare_eur`` if accepted (EUR)."""
        return self.value_eur - self.cost_eur(carbon_price_eur_per_t)

    def usage(self, index: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """GPUs in use per (pool, hour), shape (P, H), when the candidates at ``index`` run."""
        diff = np.zeros((shape[0], shape[1] + 1), dtype=np.int64)
        np.add.at(diff, (self.pool[index], self.start[index]), self.gpus[index])
        np.add.at(diff, (self.pool[index], self.start[index] + self.duration[index]),
                  -self.gpus[index])
        return np.cumsum(diff, axis=1)[:, :-1]

    def subset(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index`` (an integer or boolean array), in that order."""
        return Candidates(*(getattr(self, name)[index] for name in self.__slots__))


def _hour_offsets(column: pl.Series, market: Market) -> np.ndarray:
    start = market.config.window_start_utc
    return ((column - start).dt.total_seconds() // 3600).cast(pl.Int64).to_numpy()


def market_arrays(market: Market) -> MarketArrays:
    """The arrays of ``market`` for its configured carbon signal."""
    hours = market.config.hours
    pools = (
        market.capacity.select("site_id", "gpu_type").unique().sort("site_id", "gpu_type")
    )
    pool_site, pool_type = pools["site_id"].to_list(), pools["gpu_type"].to_list()
    index = {key: i for i, key in enumerate(zip(pool_site, pool_type, strict=True))}
    cap = np.zeros((len(index), hours), dtype=np.int64)
    ask = np.zeros((len(index), hours))
    rows = market.capacity.filter(
        (pl.col("hour_utc") >= market.config.window_start_utc)
        & (pl.col("hour_utc") < market.config.window_end_utc)
    )
    p = np.array([index[k] for k in zip(rows["site_id"], rows["gpu_type"], strict=True)],
                 dtype=np.int64)
    h = _hour_offsets(rows["hour_utc"], market)
    cap[p, h] = rows["gpus_available"].to_numpy()
    ask[p, h] = rows["ask_eur_per_gpu_hour"].to_numpy()

    sites = {row["site_id"]: row for row in market.sites.iter_rows(named=True)}
    it_kw = dict(zip(market.gpus["gpu_type"], market.gpus["it_kw"], strict=True))
    signal = f"carbon_{market.config.carbon_signal}_g_per_kwh"
    zones = sorted({sites[s]["zone"] for s in pool_site})
    intensity = np.zeros((len(zones), hours))
    price = np.zeros((len(zones), hours))
    grid = market.grid.filter(
        pl.col("zone").is_in(zones)
        & (pl.col("hour_utc") >= market.config.window_start_utc)
        & (pl.col("hour_utc") < market.config.window_end_utc)
    )
    zone_index = {z: i for i, z in enumerate(zones)}
    z = np.array([zone_index[v] for v in grid["zone"]], dtype=np.int64)
    gh = _hour_offsets(grid["hour_utc"], market)
    if grid.height != len(zones) * hours:
        raise MarketInputError(
            "Market.grid must have one row per zone with sites and hour of the window; "
            "validate the bundle with gridbridge market validate"
        )
    intensity[z, gh] = grid[signal].to_numpy()
    price[z, gh] = grid["price_eur_per_mwh"].to_numpy()

    kw = np.array([it_kw[t] * sites[s]["pue"] for s, t in zip(pool_site, pool_type,
                                                                    strict=True)])
    adder = np.array([sites[s]["tariff_adder_eur_per_mwh"] for s in pool_site])
    pz = np.array([zone_index[sites[s]["zone"]] for s in pool_site], dtype=np.int64)
    kwh = np.repeat(kw[:, None], hours, axis=1)
    energy_cost = kwh * (price[pz] + adder[:, None]) / 1000.0
    emissions = kwh * intensity[pz] / 1000.0

    bids = market.bids.sort("bid_id")
    shortest = market.bid_options.group_by("bid_id").agg(pl.col("duration_h").min())
    work = bids.join(shortest, on="bid_id", how="left")
    return MarketArrays(
        hours=hours,
        pool_site=pool_site,
        pool_type=pool_type,
        cap=cap,
        ask_eur=ask,
        kwh=kwh,
        energy_cost_eur=energy_cost,
        emissions_kg=emissions,
        bid_ids=bids["bid_id"].to_list(),
        bid_gpus=bids["gpus"].to_numpy().astype(np.int64),
        bid_value_eur=bids["value_eur"].to_numpy().astype(float),
        bid_release=_hour_offsets(bids["release_utc"], market),
        bid_deadline=_hour_offsets(bids["deadline_utc"], market),
        bid_work_h=(work["gpus"] * work["duration_h"]).to_numpy().astype(float),
    )


def prefix_sums(values: np.ndarray) -> np.ndarray:
    """Row-wise prefix sums with a leading 0: ``out[:, t+d] - out[:, t]`` sums ``[t, t+d)``."""
    out = np.zeros((values.shape[0], values.shape[1] + 1), dtype=values.dtype)
    np.cumsum(values, axis=1, out=out[:, 1:])
    return out


def allowed_pools(market: Market, arrays: MarketArrays) -> dict[str, list[int]]:
    """For each bid id, the pools whose site's jurisdiction the bid allows."""
    jurisdiction = dict(zip(market.sites["site_id"], market.sites["jurisdiction"], strict=True))
    pool_jurisdiction = [jurisdiction[s] for s in arrays.pool_site]
    out: dict[str, list[int]] = {}
    for bid_id, allowed in zip(market.bids["bid_id"], market.bids["allowed_jurisdictions"],
                               strict=True):
        ok = {a.strip() for a in allowed.split(";")}
        out[bid_id] = [p for p, j in enumerate(pool_jurisdiction) if "*" in ok or j in ok]
    return out


def enumerate_candidates(market: Market, arrays: MarketArrays) -> Candidates:
    """Every candidate placement of every bid (see the module docstring)."""
    allowed = allowed_pools(market, arrays)
    bid_index = {b: i for i, b in enumerate(arrays.bid_ids)}
    pools_of_type: dict[str, list[int]] = {}
    for p, t in enumerate(arrays.pool_type):
        pools_of_type.setdefault(t, []).append(p)

    parts: dict[str, list[np.ndarray]] = {"bid": [], "pool": [], "start": [], "duration": []}
    for bid_id, gpu_type, duration in market.bid_options.sort("bid_id", "gpu_type").iter_rows():
        b = bid_index[bid_id]
        first = max(int(arrays.bid_release[b]), 0)
        last = min(int(arrays.bid_deadline[b]), arrays.hours) - duration
        if last < first:
            continue
        starts = np.arange(first, last + 1, dtype=np.int64)
        ok_pools = set(allowed[bid_id])
        for p in pools_of_type.get(gpu_type, []):
            if p in ok_pools:
                parts["bid"].append(np.full(starts.shape, b, dtype=np.int64))
                parts["pool"].append(np.full(starts.shape, p, dtype=np.int64))
                parts["start"].append(starts)
                parts["duration"].append(np.full(starts.shape, duration, dtype=np.int64))
    if not parts["bid"]:
        empty = np.zeros(0, dtype=np.int64)
        bid = pool = start = duration_a = empty
    else:
        bid, pool, start, duration_a = (np.concatenate(parts[k]) for k in parts)
    gpus = arrays.bid_gpus[bid]
    end = start + duration_a

    # Keep only starts where the pool has the gang's GPUs in every hour: count short hours
    # with a prefix sum per distinct gang size.
    keep = np.ones(bid.shape, dtype=bool)
    for size in np.unique(gpus):
        short = prefix_sums((arrays.cap < size).astype(np.int64))
        sel = gpus == size
        keep[sel] = short[pool[sel], end[sel]] - short[pool[sel], start[sel]] == 0
    bid, pool, start, duration_a, gpus, end = (
        a[keep] for a in (bid, pool, start, duration_a, gpus, end)
    )

    def total(per_gpu_hour: np.ndarray) -> np.ndarray:
        prefix = prefix_sums(per_gpu_hour)
        return (prefix[pool, end] - prefix[pool, start]) * gpus

    order = np.lexsort((start, pool, bid))
    cands = Candidates(
        bid=bid,
        pool=pool,
        start=start,
        duration=duration_a,
        gpus=gpus,
        value_eur=arrays.bid_value_eur[bid],
        energy_kwh=total(arrays.kwh),
        energy_cost_eur=total(arrays.energy_cost_eur),
        ask_eur=total(arrays.ask_eur),
        emissions_kg=total(arrays.emissions_kg),
    )
    return cands.subset(order)

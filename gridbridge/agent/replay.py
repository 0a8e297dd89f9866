"""Replay of the bundled grid data (``datasets/bridge-2023``): carbon and price providers.

What the demo uses, and a stand-in wherever no live provider is reachable. The dataset's
``grid`` table holds, per zone and UTC hour of 2023, ``carbon_direct_g_per_kwh``,
``carbon_lifecycle_g_per_kwh`` and ``price_eur_per_mwh``; it is read once per dataset and
shared by every replay provider of the agent.

Mapping the agent's hours onto the data: without ``start_utc`` an hour is read as itself
(for an agent whose clock runs in 2023, ``[agent] clock_start_utc``). With ``start_utc``,
the ``anchor`` hour maps to ``start_utc`` and every other hour keeps its distance from the
anchor; the anchor is ``anchor_utc`` when given, else the first hour of the agent's first
report (so a restarted agent replays from ``start_utc`` again; give ``anchor_utc`` for a
mapping that survives restarts). Hours past the end of the data
wrap around to its beginning, so a replay never runs dry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.forecasts import Forecast
from gridbridge.agent.hourly import ONE_HOUR
from gridbridge.agent.signals import AgentSignal
from gridbridge.errors import GridBridgeError
from gridbridge.hours import format_hour

__all__ = ["ReplayCarbon", "ReplayClock", "ReplayGrid", "ReplayPrice"]

CARBON_COLUMNS = {"direct": "carbon_direct_g_per_kwh",
                  "lifecycle": "carbon_lifecycle_g_per_kwh"}


class ReplayGrid:
    """One dataset's grid table, loaded on first use, as ``{zone: {hour: row}}`` lookups,
    and the registry facts simulated metering needs (site PUE, GPU ``it_kw``)."""

    def __init__(self, dataset: Path) -> None:
        self.dataset = dataset
        self._zones: dict[str, pl.DataFrame] | None = None
        self._registry: tuple[pl.DataFrame, pl.DataFrame] | None = None

    def _load(self) -> tuple[dict[str, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]:
        if self._zones is None or self._registry is None:
            # Imported here: polars and the dataset reader are only needed by replaying agents.
            from gridbridge.market.source import read_dataset

            try:
                data = read_dataset(self.dataset)
            except GridBridgeError as exc:
                raise ProviderError(f"replay: cannot read the dataset {self.dataset}: {exc}") \
                    from None
            self._zones = {str(z): frame.sort("hour_utc")
                           for (z,), frame in data.grid.partition_by("zone",
                                                                     as_dict=True).items()}
            self._registry = (data.sites, data.gpus)
        return self._zones, self._registry

    def zone(self, zone: str) -> pl.DataFrame:
        """The zone's rows sorted by hour; ``ProviderError`` when the data cannot be read."""
        zones = self._load()[0]
        if zone not in zones:
            raise ProviderError(f"replay: zone {zone} is not in {self.dataset} (it has "
                                f"{', '.join(sorted(zones))})")
        return zones[zone]

    def site_pue(self, site_id: str) -> float:
        """The site's PUE from the dataset's registry (``sites.csv``); ``ProviderError``
        for a site not in it."""
        sites = self._load()[1][0]
        row = sites.filter(pl.col("site_id") == site_id)
        if row.is_empty():
            raise ProviderError(f"replay: site {site_id} is not in {self.dataset}/sites.csv")
        return float(row["pue"][0])

    def it_kw(self) -> dict[str, float]:
        """IT power per GPU by type, kW (GPU plus its share of the node), from ``gpus.csv``."""
        gpus = self._load()[1][1]
        return dict(zip(gpus["gpu_type"].to_list(), map(float, gpus["it_kw"].to_list()),
                        strict=True))


@dataclass
class ReplayClock:
    """Maps the agent's hours onto the dataset's hours (see the module docstring)."""

    start_utc: datetime | None = None
    anchor_utc: datetime | None = None

    def source_hours(self, hours: Sequence[datetime], first: datetime,
                     count: int) -> list[datetime]:
        """The data hour for each asked hour; ``first``/``count`` describe the data."""
        if self.start_utc is not None and self.anchor_utc is None and hours:
            self.anchor_utc = hours[0]
        out = []
        for hour in hours:
            shifted = hour if self.start_utc is None else \
                self.start_utc + (hour - self.anchor_utc)  # type: ignore[operator]
            offset = round((shifted - first) / ONE_HOUR) % count
            out.append(first + offset * ONE_HOUR)
        return out


def _replayed(grid: ReplayGrid, zone: str, column: str, clock: ReplayClock,
              hours: Sequence[datetime]) -> dict[datetime, float]:
    frame = grid.zone(zone)
    first, count = frame["hour_utc"][0], frame.height
    last = frame["hour_utc"][-1]
    if clock.start_utc is None and hours and not first <= hours[0] <= last:
        raise ProviderError(
            f"replay: {format_hour(hours[0])} is outside the data of zone {zone} "
            f"({format_hour(first)} to {format_hour(last)}) — fix: set start_utc in the "
            "replay provider's table, or [agent] clock_start_utc")
    by_hour = dict(zip(frame["hour_utc"].to_list(), frame[column].to_list(), strict=True))
    sources = clock.source_hours(hours, first, count)
    return {hour: float(by_hour[src]) for hour, src in zip(hours, sources, strict=True)
            if src in by_hour and by_hour[src] is not None}


class ReplayCarbon:
    """The dataset's direct or lifecycle intensity for a zone, replayed."""

    def __init__(self, grid: ReplayGrid, *, zone: str, signal: Literal["direct", "lifecycle"],
                 clock: ReplayClock | None = None) -> None:
        self.grid, self.zone = grid, zone
        self.signal: AgentSignal = signal
        self.clock = clock or ReplayClock()
        self.name = f"replay:{grid.dataset.name}"

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """Replayed gCO2eq/kWh for every asked hour."""
        values = _replayed(self.grid, self.zone, CARBON_COLUMNS[self.signal], self.clock, hours)
        return Forecast(self.name, values, self.signal)


class ReplayPrice:
    """The dataset's wholesale price for a zone (EUR/MWh, may be negative), replayed."""

    signal: AgentSignal | None = None

    def __init__(self, grid: ReplayGrid, *, zone: str, clock: ReplayClock | None = None) -> None:
        self.grid, self.zone = grid, zone
        self.clock = clock or ReplayClock()
        self.name = f"replay:{grid.dataset.name}"

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """Replayed EUR/MWh for every asked hour."""
        return Forecast(self.name, _replayed(self.grid, self.zone, "price_eur_per_mwh",
                                             self.clock, hours))

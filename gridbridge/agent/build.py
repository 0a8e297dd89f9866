"""Wiring: turn a validated :class:`~gridbridge.agent.config.AgentConfig` into live parts.

The edges tests replace are parameters: the ``httpx`` transport, the ``sleep`` used between
retries, the clock, the ``pynvml`` module and the Slurm command runner.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from gridbridge import __version__
from gridbridge.agent.carbon.electricitymaps import ElectricityMaps
from gridbridge.agent.carbon.ukcarbon import UkCarbonIntensity
from gridbridge.agent.carbon.watttime import WattTime
from gridbridge.agent.config import AgentConfig, HttpSettings, InventorySettings, ProviderSettings
from gridbridge.agent.forecasts import HourlyProvider, ProviderChain
from gridbridge.agent.hourly import Clock, system_clock
from gridbridge.agent.inventory import InventoryReading, InventorySource, capped
from gridbridge.agent.inventory.nvml import NvmlInventory
from gridbridge.agent.inventory.slurm import SlurmInventory, run_command
from gridbridge.agent.inventory.static import StaticInventory
from gridbridge.agent.metering import FileMeter, MeterSource, ReplayMeter
from gridbridge.agent.prices import FixedTariff
from gridbridge.agent.replay import ReplayCarbon, ReplayClock, ReplayGrid, ReplayPrice
from gridbridge.agent.retry import Http, RetryPolicy

__all__ = ["CappedInventory", "build_carbon", "build_http", "build_inventory", "build_meter",
           "build_price"]


def build_http(settings: HttpSettings, *, transport: httpx.BaseTransport | None = None,
               sleep: Callable[[float], object] = time.sleep,
               cancelled: Callable[[], bool] = lambda: False,
               rng: random.Random | None = None) -> Http:
    """One HTTP client (connection pool) for the exchange and every provider."""
    client = httpx.Client(timeout=settings.timeout_s, transport=transport,
                          headers={"User-Agent": f"gridbridge-agent/{__version__}"})
    policy = RetryPolicy(attempts=settings.retries + 1, base_s=settings.backoff_s,
                         max_s=settings.backoff_max_s)
    return Http(client, policy, sleep=sleep, rng=rng or random.Random(), cancelled=cancelled)


class CappedInventory:
    """Any source, with the site's per-type cap applied."""

    def __init__(self, source: InventorySource, cap: Mapping[str, int]) -> None:
        self.source, self.cap = source, dict(cap)
        self.name = source.name

    def free_gpus(self, hours: Sequence[datetime]) -> InventoryReading:
        """The source's reading, capped."""
        return capped(self.source.free_gpus(hours), self.cap)


def build_inventory(settings: InventorySettings, *, nvml: Any = None,
                    slurm_runner: Callable[[Sequence[str], float], str] = run_command
                    ) -> InventorySource:
    """The configured inventory source, capped."""
    options = settings.options
    source: InventorySource
    if settings.source == "nvml":
        source = NvmlInventory(names=options.get("names"), nvml=nvml)
    elif settings.source == "slurm":
        source = SlurmInventory(**options, runner=slurm_runner)
    else:
        source = StaticInventory(gpus=options.get("gpus"), path=options.get("path"))
    return CappedInventory(source, settings.cap) if settings.cap else source


def _grid(grids: dict[Path, ReplayGrid], dataset: Path) -> ReplayGrid:
    # One loaded grid per dataset, shared by the carbon and price replays.
    if dataset not in grids:
        grids[dataset] = ReplayGrid(dataset)
    return grids[dataset]


def _replay_clock(options: Mapping[str, Any], anchor: datetime | None) -> ReplayClock:
    return ReplayClock(start_utc=options.get("start_utc"),
                       anchor_utc=options.get("anchor_utc") or anchor)


def _carbon_provider(spec: ProviderSettings, http: Http, grids: dict[Path, ReplayGrid],
                     clock: Clock, anchor: datetime | None) -> HourlyProvider:
    o = spec.options
    if spec.kind == "electricitymaps":
        return ElectricityMaps(http, **o)
    if spec.kind == "ukcarbonintensity":
        return UkCarbonIntensity(http, **o)
    if spec.kind == "watttime":
        return WattTime(http, **o, clock=clock)
    return ReplayCarbon(_grid(grids, o["dataset"]), zone=o["zone"],
                        signal=spec.signal, clock=_replay_clock(o, anchor))  # type: ignore[arg-type]


def build_carbon(config: AgentConfig, http: Http, *, clock: Clock = system_clock,
                 grids: dict[Path, ReplayGrid] | None = None,
                 anchor: datetime | None = None) -> ProviderChain:
    """The carbon chain: the configured providers in order, all of the site's signal.

    ``anchor`` is the real hour replays without their own ``anchor_utc`` map to their
    ``start_utc`` (see :mod:`gridbridge.agent.replay`)."""
    grids = {} if grids is None else grids
    return ProviderChain("carbon", [_carbon_provider(s, http, grids, clock, anchor)
                                    for s in config.carbon],
                         min_hours=config.min_forecast_hours, signal=config.signal)


def build_price(config: AgentConfig, *, grids: dict[Path, ReplayGrid] | None = None,
                anchor: datetime | None = None) -> ProviderChain:
    """The price chain: the configured providers in order (``anchor`` as for carbon)."""
    grids = {} if grids is None else grids
    providers: list[HourlyProvider] = []
    for spec in config.price:
        if spec.kind == "fixed":
            providers.append(FixedTariff(spec.options["eur_per_mwh"]))
        else:
            providers.append(ReplayPrice(_grid(grids, spec.options["dataset"]),
                                         zone=spec.options["zone"],
                                         clock=_replay_clock(spec.options, anchor)))
    return ProviderChain("price", providers, min_hours=config.min_forecast_hours)


def build_meter(config: AgentConfig, *, grids: dict[Path, ReplayGrid] | None = None,
                anchor: datetime | None = None) -> MeterSource | None:
    """The metering source of ``[metering]`` (``anchor`` as for carbon); None when off."""
    settings = config.metering
    o = settings.options
    if settings.source == "file":
        return FileMeter(o["path"])
    if settings.source == "replay":
        grids = {} if grids is None else grids
        return ReplayMeter(_grid(grids, o["dataset"]), site_id=config.site_id, zone=o["zone"],
                           signal=config.signal, clock=_replay_clock(o, anchor), seed=o["seed"],
                           energy_noise=o["energy_noise"], carbon_noise=o["carbon_noise"])
    return None

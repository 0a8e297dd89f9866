"""The agent's cycle: read, build a report, spool it, drain the spool — then wait and repeat.

One cycle:

1. read the inventory and the carbon and price chains for the next ``horizon_hours`` whole
   hours (:func:`gridbridge.agent.hourly.next_hours`);
2. build a :class:`~gridbridge.exchange.contract.TelemetryReport` with a fresh report id;
3. write it to the spool (from here on it cannot be lost);
4. if ``[metering]`` is configured: fetch the site's assignments and spool one metering
   report per round for the placement-hours that have ended and are not metered yet
   (:mod:`gridbridge.agent.metering`; a failed fetch or source is logged, the cycle goes on);
5. drain the spool, oldest report first (telemetry and metering alike).

A failed read (every provider of a chain failed, the inventory unavailable) builds no report
this cycle but still drains the backlog. ``stop`` (set by Ctrl-C or SIGTERM) is checked
between steps and between reports; waits between retries and between cycles end at once
when it is set, so the agent stops cleanly after the step in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx
from pydantic import ValidationError

from gridbridge.agent.build import (
    build_carbon,
    build_http,
    build_inventory,
    build_meter,
    build_price,
)
from gridbridge.agent.config import AgentConfig
from gridbridge.agent.errors import ProviderError
from gridbridge.agent.forecasts import ProviderChain
from gridbridge.agent.hourly import Clock, hour_ceil, next_hours, replay_clock, system_clock
from gridbridge.agent.inventory import InventorySource
from gridbridge.agent.inventory.slurm import run_command
from gridbridge.agent.metering import MeteringResult, MeterSource, meter_ended
from gridbridge.agent.report import build_report
from gridbridge.agent.retry import Http
from gridbridge.agent.spool import Spool
from gridbridge.agent.uplink import (
    AssignmentsError,
    DrainResult,
    ExchangeUplink,
    drain,
    telemetry_path,
)
from gridbridge.exchange.contract import TelemetryReport

__all__ = ["Agent", "CycleResult"]

log = logging.getLogger("gridbridge.agent")


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle did: the report spooled (if any), why not, metering, and the drain."""

    report_id: str | None
    hours: int
    provider: str | None
    error: str | None
    drain: DrainResult | None
    metering: MeteringResult | None = None


class Agent:
    """A running site agent. Build it with :meth:`from_config`; close it when done."""

    def __init__(self, config: AgentConfig, *, inventory: InventorySource,
                 carbon: ProviderChain, price: ProviderChain, spool: Spool,
                 uplink: ExchangeUplink, http: Http, clock: Clock = system_clock,
                 stop: threading.Event | None = None, meter: MeterSource | None = None) -> None:
        self.config = config
        self.meter = meter
        self.inventory, self.carbon, self.price = inventory, carbon, price
        self.spool, self.uplink, self.http = spool, uplink, http
        self.clock = clock
        self.stop = stop or threading.Event()

    @classmethod
    def from_config(cls, config: AgentConfig, *, transport: httpx.BaseTransport | None = None,
                    clock: Clock | None = None, stop: threading.Event | None = None,
                    sleep: Callable[[float], object] | None = None, nvml: Any = None,
                    slurm_runner: Callable[[Sequence[str], float], str] = run_command) -> Self:
        """Wire every part from ``config``; the arguments replace the real edges in tests."""
        stop = stop or threading.Event()
        if clock is None:
            clock = (replay_clock(config.clock_start_utc, time.monotonic)
                     if config.clock_start_utc else system_clock)
        http = build_http(config.http, transport=transport, sleep=sleep or stop.wait,
                          cancelled=stop.is_set)
        grids: dict[Any, Any] = {}
        # Every replay without its own anchor_utc maps the agent's first report hour to its
        # start_utc, so carbon and price replay the same moment.
        anchor = hour_ceil(clock())
        inventory = build_inventory(config.inventory, nvml=nvml, slurm_runner=slurm_runner)
        carbon = build_carbon(config, http, clock=clock, grids=grids, anchor=anchor)
        price = build_price(config, grids=grids, anchor=anchor)
        meter = build_meter(config, grids=grids, anchor=anchor)
        return cls(config, inventory=inventory, carbon=carbon, price=price,
                   spool=Spool.open(config.spool),  # opened last: nothing above can leak it
                   uplink=ExchangeUplink(http, base_url=config.exchange.url,
                                         token=config.exchange.token),
                   http=http, clock=clock, stop=stop, meter=meter)

    def close(self) -> None:
        """Close the spool and the HTTP connections."""
        self.spool.close()
        self.http.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> TelemetryReport:
        """Read every source for the coming hours and build the report (not yet spooled)."""
        measured_at = self.clock()
        hours = next_hours(measured_at, self.config.horizon_hours)
        inventory = self.inventory.free_gpus(hours)
        carbon = self.carbon.forecast(hours)
        price = self.price.forecast(hours)
        for note in (*inventory.notes, *carbon.forecast.notes, *price.forecast.notes):
            log.warning("%s", note)
        for failure in (*carbon.failures, *price.failures):
            log.warning("fell back: %s", failure)
        return build_report(site_id=self.config.site_id, zone=self.config.zone,
                            measured_at=measured_at, hours=hours, inventory=inventory,
                            carbon=carbon, price=price)

    def meter_ended(self) -> MeteringResult | None:
        """Fetch the assignments and spool metering for ended hours (None when metering is
        off); never raises for a failed fetch or source: the result carries the error."""
        if self.meter is None:
            return None
        try:
            assignments = self.uplink.assignments(self.config.site_id)
            return meter_ended(site_id=self.config.site_id, assignments=assignments,
                               now=self.clock(), spool=self.spool, source=self.meter)
        except (AssignmentsError, ProviderError, ValidationError) as exc:
            log.error("no metering this cycle: %s", exc)
            return MeteringResult(error=str(exc))

    def cycle(self) -> CycleResult:
        """One cycle: read, spool, meter, drain (see the module docstring)."""
        report: TelemetryReport | None = None
        error: str | None = None
        try:
            report = self.read()
        except (ProviderError, ValidationError) as exc:
            # A ValidationError is a reading the contract refuses (say, 17 GPU types): no
            # report this cycle, and the agent keeps running.
            error = str(exc)
            if not self.stop.is_set():
                log.error("no report this cycle: %s", error)
        if report is not None and not self.stop.is_set():
            self.spool.put(report.report_id, "telemetry", telemetry_path(self.config.site_id),
                           report.model_dump_json())
            log.info("report %s spooled: %d hours from %s, carbon %s (%s)", report.report_id,
                     len(report.hours), f"{report.hours[0].hour_utc:%Y-%m-%dT%H:%MZ}",
                     report.provider, report.signal)
        elif report is not None:
            report = None  # stopped while reading: nothing was promised, nothing is spooled
        metering = None if self.stop.is_set() else self.meter_ended()
        result = None
        if not self.stop.is_set():
            result = drain(self.spool, self.uplink, cancelled=self.stop.is_set)
            log.info("delivered %d (stored %d, duplicate %d), dead-lettered %d, backlog %d",
                     result.delivered, result.stored, result.duplicates,
                     len(result.dead_lettered), result.remaining)
        return CycleResult(report.report_id if report else None,
                           len(report.hours) if report else 0,
                           report.provider if report else None, error, result, metering)

    def run(self, *, once: bool = False) -> CycleResult | None:
        """Cycle every ``cycle_seconds`` until ``stop`` is set (or once); the last result."""
        last: CycleResult | None = None
        while not self.stop.is_set():
            started = time.monotonic()
            last = self.cycle()
            if once:
                break
            self.stop.wait(max(0.0, self.config.cycle_s - (time.monotonic() - started)))
        return last

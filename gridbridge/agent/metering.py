"""Metering: the energy (kWh) and actual carbon intensity of the site's placements, per hour.

Each cycle the agent fetches its assignments (the placements of cleared rounds on its site)
and, for every placement-hour that has **ended** (hour end <= the agent's clock) and is not
yet in the spool's ``metered`` table nor among the hours the exchange says it holds
(the assignment's ``metered_hours_utc``), asks the configured source for a row:

* ``replay`` — **simulated**, for the demo: energy = GPUs x ``it_kw`` of the GPU type (kW,
  ``gpus.csv``) x the site's PUE (``sites.csv``) x 1 h x a noise factor drawn from
  N(1, ``energy_noise``) clipped at 0; the actual intensity is the replayed grid value of the
  site's signal (gCO2eq/kWh, mapped like the carbon replay) x N(1, ``carbon_noise``) clipped
  at 0. The noise of each (round, bid, hour) comes from its own generator seeded with
  ``seed`` and that key, so the values are reproducible whatever the order or the cycle.
  Its reports carry ``sim`` in their id and are logged as simulated (the contract's
  :class:`~gridbridge.exchange.contract.MeteringReport` has no provider field);
* ``file`` — the site's own metering system drops a CSV with the columns ``bid_id,
  hour_utc, energy_kwh`` and optionally ``member`` and ``carbon_g_per_kwh``; it is re-read
  every cycle and an ended hour without a row waits for a later cycle. Without ``member``, a
  row names the placement by ``bid_id`` alone (left unmetered, with a warning, when two
  members' placements share that bid id and hour). Its reports carry ``met`` in their id.

Rows are grouped into one :class:`MeteringReport` per round, spooled together with the
marks of their hours (:meth:`~gridbridge.agent.spool.Spool.put_metering`), and delivered by
the same drain as telemetry.
"""

from __future__ import annotations

import csv
import logging
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from pydantic import ValidationError

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.hourly import ONE_HOUR
from gridbridge.agent.replay import ReplayCarbon, ReplayClock, ReplayGrid
from gridbridge.agent.spool import Spool
from gridbridge.agent.uplink import metering_path
from gridbridge.exchange.contract import MAX_HOURS, AssignmentOut, MeteringReport, MeteringRow
from gridbridge.hours import HourParseError, format_hour, parse_hour

__all__ = ["FileMeter", "MeterSource", "MeteringResult", "PlacementHour", "ReplayMeter",
           "ended_hours", "meter_ended", "new_metering_report_id"]

log = logging.getLogger("gridbridge.agent")

#: Rows per metering report at most (the contract allows MAX_HOURS x 64).
MAX_ROWS = MAX_HOURS * 64


class PlacementHour(NamedTuple):
    """One hour of one placement on the site: ``gpus`` GPUs of ``gpu_type`` from ``hour``."""

    round_id: str
    member: str
    bid_id: str
    gpu_type: str
    gpus: int
    hour: datetime

    @property
    def key(self) -> tuple[str, str, str, str]:
        """``(round_id, member, bid_id, hour_utc)`` as the spool's ``metered`` table stores
        it (bid ids are unique per member only)."""
        return self.round_id, self.member, self.bid_id, format_hour(self.hour)


class MeterSource(Protocol):
    """Where metered rows come from."""

    name: str
    #: ``sim`` for simulated values, ``met`` for measured ones (goes into the report id).
    tag: str

    def rows(self, hours: Sequence[PlacementHour]) -> dict[PlacementHour, MeteringRow]:
        """A row for each hour the source can meter now (others wait)."""
        ...


def ended_hours(assignments: Iterable[AssignmentOut], now: datetime) -> list[PlacementHour]:
    """Every hour of the assignments whose end (hour + 1 h) is at or before ``now``, except
    the hours the exchange says it already holds metering of (``metered_hours_utc``: an
    agent that lost its spool, or a second agent of the site, never meters an hour twice)."""
    out = []
    for a in assignments:
        held = set(a.metered_hours_utc)
        try:
            start, end = parse_hour(a.start_utc), parse_hour(a.end_utc)
        except HourParseError as exc:
            log.warning("assignment %s/%s skipped: %s", a.round_id, a.bid_id, exc)
            continue
        hour = start
        while hour < end and hour + ONE_HOUR <= now:
            if format_hour(hour) not in held:
                out.append(PlacementHour(a.round_id, a.member, a.bid_id, a.gpu_type, a.gpus,
                                         hour))
            hour += ONE_HOUR
    return out


def new_metering_report_id(site_id: str, measured_at: datetime, tag: str) -> str:
    """``GB-BRISTOL-1-20230703T140512Z-sim3f2a9c01b`` (30 characters after the site id, like
    a telemetry report id; ``tag`` is ``sim`` or ``met``)."""
    stamp = measured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{site_id}-{stamp}-{tag}{uuid.uuid4().hex[:9]}"


def _factor(rng: random.Random, sd: float) -> float:
    return max(0.0, rng.gauss(1.0, sd))


class ReplayMeter:
    """Simulated metering from the bundled data (see the module docstring)."""

    tag = "sim"

    def __init__(self, grid: ReplayGrid, *, site_id: str, zone: str, signal: str,
                 clock: ReplayClock, seed: int = 0, energy_noise: float = 0.03,
                 carbon_noise: float = 0.02) -> None:
        self.grid, self.site_id = grid, site_id
        self.carbon = ReplayCarbon(grid, zone=zone, signal=signal,  # type: ignore[arg-type]
                                   clock=clock)
        self.seed, self.energy_noise, self.carbon_noise = seed, energy_noise, carbon_noise
        self.name = f"simulated:replay:{grid.dataset.name}"

    def rows(self, hours: Sequence[PlacementHour]) -> dict[PlacementHour, MeteringRow]:
        """Simulated kWh and gCO2eq/kWh for every hour of a GPU type the dataset knows."""
        if not hours:
            return {}
        pue, it_kw = self.grid.site_pue(self.site_id), self.grid.it_kw()
        stamps = sorted({h.hour for h in hours})
        intensity = self.carbon.forecast(stamps).values
        out: dict[PlacementHour, MeteringRow] = {}
        for h in hours:
            if h.gpu_type not in it_kw:
                log.warning("no simulated metering for %s/%s: GPU type %s is not in %s",
                            h.round_id, h.bid_id, h.gpu_type, self.grid.dataset)
                continue
            rng = random.Random("|".join((str(self.seed), *h.key)))
            kwh = h.gpus * it_kw[h.gpu_type] * pue * 1.0 * _factor(rng, self.energy_noise)
            carbon = _factor(rng, self.carbon_noise)
            actual = intensity.get(h.hour)
            out[h] = MeteringRow(member=h.member, bid_id=h.bid_id, hour_utc=h.hour,
                                 energy_kwh=round(kwh, 3),
                                 carbon_g_per_kwh=None if actual is None
                                 else round(actual * carbon, 2))
        return out


class FileMeter:
    """The site's metering CSV: ``bid_id,hour_utc,energy_kwh[,member][,carbon_g_per_kwh]``
    (kWh of the facility in that hour, gCO2eq/kWh)."""

    tag = "met"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path.name}"

    def read(self) -> dict[tuple[str | None, str, datetime], _FileRow]:
        """Every row of the file by (member or None, bid_id, hour); a missing file is empty
        (not yet dropped); ``ProviderError`` naming the line for a bad row."""
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            log.info("metering file %s is not there yet", self.path)
            return {}
        except OSError as exc:
            raise ProviderError(f"metering file {self.path}: {exc.strerror}") from None
        reader = csv.DictReader(text.splitlines())
        missing = {"bid_id", "hour_utc", "energy_kwh"} - set(reader.fieldnames or ())
        if missing:
            raise ProviderError(f"metering file {self.path}: missing column(s) "
                                f"{', '.join(sorted(missing))} — fix: the header is bid_id,"
                                "hour_utc,energy_kwh[,carbon_g_per_kwh]")
        out: dict[tuple[str | None, str, datetime], _FileRow] = {}
        for line, raw in enumerate(reader, start=2):
            carbon = (raw.get("carbon_g_per_kwh") or "").strip()
            member = (raw.get("member") or "").strip() or None
            try:
                row = MeteringRow(member=member or "unknown",
                                  bid_id=(raw["bid_id"] or "").strip(),
                                  hour_utc=parse_hour(raw["hour_utc"] or ""),
                                  energy_kwh=float(raw["energy_kwh"] or "nan"),
                                  carbon_g_per_kwh=float(carbon) if carbon else None)
            except (HourParseError, ValueError, ValidationError) as exc:
                raise ProviderError(f"metering file {self.path} line {line}: {exc}") from None
            out[(member, row.bid_id, row.hour_utc)] = _FileRow(row.energy_kwh,
                                                               row.carbon_g_per_kwh)
        return out

    def rows(self, hours: Sequence[PlacementHour]) -> dict[PlacementHour, MeteringRow]:
        """The file's row for each hour that has one."""
        if not hours:
            return {}
        found = self.read()
        sharing: dict[tuple[str, datetime], int] = {}
        for h in hours:
            sharing[(h.bid_id, h.hour)] = sharing.get((h.bid_id, h.hour), 0) + 1
        out: dict[PlacementHour, MeteringRow] = {}
        for h in hours:
            row = found.get((h.member, h.bid_id, h.hour))
            if row is None and (None, h.bid_id, h.hour) in found:
                if sharing[(h.bid_id, h.hour)] > 1:
                    log.warning("metering file %s: bid %s at %s is placed for several members"
                                " — add a member column", self.path, h.bid_id,
                                format_hour(h.hour))
                    continue
                row = found[(None, h.bid_id, h.hour)]
            if row is not None:
                out[h] = MeteringRow(member=h.member, bid_id=h.bid_id, hour_utc=h.hour,
                                     energy_kwh=row.energy_kwh,
                                     carbon_g_per_kwh=row.carbon_g_per_kwh)
        return out


class _FileRow(NamedTuple):
    energy_kwh: float
    carbon_g_per_kwh: float | None


@dataclass(slots=True)
class MeteringResult:
    """What one metering step did: reports spooled, rows in them, ended hours still waiting
    for the source, and the error that stopped it (if any)."""

    reports: list[str] = field(default_factory=list)
    rows: int = 0
    waiting: int = 0
    error: str | None = None


def meter_ended(*, site_id: str, assignments: Sequence[AssignmentOut], now: datetime,
                spool: Spool, source: MeterSource) -> MeteringResult:
    """Meter every ended, not yet metered placement-hour: spool one report per round (or
    more when a round has over :data:`MAX_ROWS` rows) with its hours marked."""
    result = MeteringResult()
    ended = ended_hours(assignments, now)
    done = spool.metered({h.round_id for h in ended})
    due = [h for h in ended if h.key not in done]
    rows = source.rows(due)
    result.waiting = len(due) - len(rows)
    by_round: dict[str, list[PlacementHour]] = {}
    for h in due:
        if h in rows:
            by_round.setdefault(h.round_id, []).append(h)
    for round_id, hours in by_round.items():
        for i in range(0, len(hours), MAX_ROWS):
            chunk = hours[i:i + MAX_ROWS]
            report = MeteringReport(report_id=new_metering_report_id(site_id, now, source.tag),
                                    round_id=round_id, rows=[rows[h] for h in chunk])
            spool.put_metering(report.report_id, metering_path(site_id),
                               report.model_dump_json(), [h.key for h in chunk])
            result.reports.append(report.report_id)
            result.rows += len(chunk)
            log.info("metering report %s spooled: %d placement-hour(s) of round %s from %s%s",
                     report.report_id, len(chunk), round_id, source.name,
                     " (SIMULATED, not measured)" if source.tag == "sim" else "")
    return result

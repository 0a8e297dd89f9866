"""The exchange's HTTP contract (``/v1``): the request and response bodies, as pydantic models.

One source of truth for both ends: the exchange (FastAPI) validates requests with these
models and publishes them in ``/openapi.json``; the site agent builds its reports with the
same models. Units and names follow DESIGN.md's glossary: UTC hour-beginning stamps written
``2023-07-03T14:00Z``, whole GPUs, gCO2eq/kWh, EUR/MWh, EUR per GPU-hour, kWh.

Validation rules every model applies (each failure is a 422 naming the field):

* stamps must be UTC and on a whole hour (``14:00Z``, not ``14:30Z`` or ``+02:00``);
* numbers must be finite (no NaN or infinity) and GPU counts, intensities and energy >= 0;
  prices may be negative (Germany had 301 negative hours in 2023);
* identifiers (report ids, bid ids) are 1-100 printable characters without spaces;
* lists are bounded (``MAX_HOURS`` hours per report), so no body is unbounded.

Who may call what is stated per endpoint in :mod:`gridbridge.exchange.app`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

#: At most 31 days of hours in one telemetry or metering report.
MAX_HOURS = 24 * 31
#: At most this many GPU types per hour of a report, and options per bid.
MAX_TYPES = 16


def _utc_hour(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a time zone: write UTC stamps like 2023-07-03T14:00Z")
    if value.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ValueError("must be UTC (offset 0): write stamps like 2023-07-03T14:00Z")
    if value.minute or value.second or value.microsecond:
        raise ValueError("must be on a whole hour (hour-beginning), e.g. 2023-07-03T14:00Z")
    return value.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


UtcHour = Annotated[datetime, AfterValidator(_utc_hour)]
Finite = Annotated[float, AfterValidator(_finite)]
NonNegative = Annotated[float, Field(ge=0), AfterValidator(_finite)]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:@-]{1,100}$")]
GpuType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
Signal = Literal["direct", "lifecycle"]


class _Body(BaseModel):
    """Strict bodies: unknown fields are refused, so a typo is a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetryHour(_Body):
    """One hour of a site's forecast: free GPUs by type and its zone's grid."""

    hour_utc: UtcHour
    gpus_free: dict[GpuType, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        max_length=MAX_TYPES, description="free whole GPUs by GPU type for this hour")
    carbon_g_per_kwh: NonNegative = Field(description="grid carbon intensity, gCO2eq/kWh")
    price_eur_per_mwh: Finite = Field(description="zone's wholesale price, EUR/MWh")


class TelemetryReport(_Body):
    """``POST /v1/sites/{site_id}/telemetry``: an hourly forecast for one site.

    ``report_id`` makes delivery idempotent: the same id delivered again is acknowledged and
    not stored twice. ``signal`` and ``provider`` say where the intensity came from; the
    exchange never mixes signals within one zone's series.
    """

    report_id: Ident
    zone: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,10})?$")]
    signal: Signal
    provider: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    measured_at_utc: datetime = Field(description="when the agent took the readings (UTC)")
    hours: list[TelemetryHour] = Field(min_length=1, max_length=MAX_HOURS)

    @field_validator("measured_at_utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (UTC), e.g. 2023-07-03T14:05:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _distinct_hours(self) -> TelemetryReport:
        seen = [h.hour_utc for h in self.hours]
        if len(set(seen)) != len(seen):
            raise ValueError("hours: each hour_utc may appear once per report")
        return self


class Ack(_Body):
    """The exchange's answer to a report: ``stored`` the first time, ``duplicate`` after."""

    report_id: str
    status: Literal["stored", "duplicate"]


class GpuOption(_Body):
    """One way to run a bid: on ``gpu_type`` it takes ``hours`` contiguous hours."""

    gpu_type: GpuType
    hours: Annotated[int, Field(ge=1, le=24 * 366)]


class BidIn(_Body):
    """``POST /v1/rounds/{round_id}/bids``: a member's sealed bid for a training job.

    ``value_eur`` is the most the member will pay for the whole job; the job must run
    ``gpus`` GPUs of one option's type at one site for that option's hours, inside
    [``release_utc``, ``deadline_utc``); ``allowed_jurisdictions`` lists ISO codes or ``*``.
    """

    bid_id: Ident
    gpus: Annotated[int, Field(ge=1, le=100_000)]
    options: list[GpuOption] = Field(min_length=1, max_length=MAX_TYPES)
    release_utc: UtcHour
    deadline_utc: UtcHour
    value_eur: Annotated[float, Field(gt=0), AfterValidator(_finite)]
    allowed_jurisdictions: list[Annotated[str, StringConstraints(pattern=r"^(\*|[A-Z]{2})$")]] = (
        Field(default_factory=lambda: ["*"], min_length=1, max_length=32))

    @model_validator(mode="after")
    def _window(self) -> BidIn:
        if self.deadline_utc <= self.release_utc:
            raise ValueError("deadline_utc must be after release_utc (the deadline is "
                             "exclusive: the job must have ended by then)")
        longest = (self.deadline_utc - self.release_utc).total_seconds() / 3600
        if min(o.hours for o in self.options) > longest:
            raise ValueError(f"no option fits between release_utc and deadline_utc "
                             f"({longest:g} h); move the deadline or shorten an option")
        if len({o.gpu_type for o in self.options}) != len(self.options):
            raise ValueError("options: each gpu_type may appear once")
        return self


class MeteringRow(_Body):
    """One placement-hour as metered: facility kWh and, optionally, the actual intensity."""

    bid_id: Ident
    hour_utc: UtcHour
    energy_kwh: NonNegative
    carbon_g_per_kwh: NonNegative | None = None


class MeteringReport(_Body):
    """``POST /v1/sites/{site_id}/metering``: metered energy of placements on the site;
    idempotent by ``report_id`` like telemetry."""

    report_id: Ident
    round_id: Ident
    rows: list[MeteringRow] = Field(min_length=1, max_length=MAX_HOURS * 64)


__all__ = ["MAX_HOURS", "MAX_TYPES", "Ack", "BidIn", "GpuOption", "MeteringReport",
           "MeteringRow", "Signal", "TelemetryHour", "TelemetryReport"]

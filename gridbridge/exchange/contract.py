"""The exchange's HTTP contract (``/v1``): the request and response bodies, as pydantic models.

One source of truth for both ends: the exchange (FastAPI) validates requests with these
models and publishes them in ``/openapi.json``; the site agent builds its reports with the
same models. Units and names follow DESIGN.md's glossary: UTC hour-beginning stamps written
``2023-07-03T14:00Z``, whole GPUs, gCO2eq/kWh, EUR/MWh, EUR per GPU-hour, kWh.

Validation rules every model applies (each failure is a 422 naming the field):

* stamps must be UTC and on a whole hour (``14:00Z``, not ``14:30Z`` or ``+02:00``);
* numbers must be finite (no NaN or infinity) and GPU counts, intensities and energy >= 0;
  prices may be negative (Germany had 301 negative hours in 2023);
* prices, intensities, asks, bid values and carbon prices lie within the sane bounds of
  :mod:`gridbridge.limits` (published in the schema as ``minimum``/``maximum``); a value
  outside, or not a finite number, is refused with one message naming the field, its bounds
  and the fix;
* identifiers (report ids, bid ids) are 1-100 printable characters without spaces;
* lists are bounded (``MAX_HOURS`` hours per report), so no body is unbounded;
* metered energy (``MAX_METERED_KWH``) and intensity (the same sane bounds as a reported
  one) are bounded, so every true-up is an amount the ledger's integer cents can hold.

Who may call what is stated per endpoint in :mod:`gridbridge.exchange.app`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from gridbridge.limits import (
    ASK_EUR_PER_GPU_HOUR,
    BID_VALUE_EUR,
    CARBON_G_PER_KWH,
    CARBON_PRICE_EUR_PER_T,
    PRICE_EUR_PER_MWH,
    Limit,
)

#: At most 31 days of hours in one telemetry or metering report.
MAX_HOURS = 24 * 31
#: At most this many GPU types per hour of a report, and options per bid.
MAX_TYPES = 16


def _whole_utc_hour(value: datetime) -> datetime:
    """``value`` itself, once checked to be UTC (offset 0) and on a whole hour."""
    # Runs for every hour of every report (hundreds per request): one utcoffset() call.
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("must carry a time zone: write UTC stamps like 2023-07-03T14:00Z")
    if offset:
        raise ValueError("must be UTC (offset 0): write stamps like 2023-07-03T14:00Z")
    if value.minute or value.second or value.microsecond:
        raise ValueError("must be on a whole hour (hour-beginning), e.g. 2023-07-03T14:00Z")
    return value


def _utc_hour(value: datetime) -> datetime:
    """A UTC whole hour with :data:`datetime.UTC` as its zone (no astimezone() when it
    already is)."""
    _whole_utc_hour(value)
    return value if value.tzinfo is UTC else value.replace(tzinfo=UTC)


UtcHour = Annotated[datetime, AfterValidator(_utc_hour)]
#: A telemetry report's hour: checked as :data:`UtcHour`, but kept with the zone it was
#: parsed with (from JSON, pydantic's offset-0 ``TzInfo``) instead of rebuilt with
#: :data:`datetime.UTC`: the same instant, and rebuilding the hundreds of hours of a report
#: cost a third of validating it. The exchange only formats and compares them.
ReportHour = Annotated[datetime, AfterValidator(_whole_utc_hour)]


@dataclass(frozen=True, slots=True)
class _Bounded:
    """Annotates a float field whose value must be finite and within ``limit``: pydantic's
    ``Field(ge=..., le=..., allow_inf_nan=False)`` (so the schema publishes the bounds), every
    refusal of which (not a number, NaN, infinity, out of range) becomes the one message
    "``name`` must be a finite number between ... — fix: ``fix``". The check and the message
    are pydantic-core's own (a custom error), so no Python runs per value: telemetry
    validates hundreds of hours per report. ``low_open`` refuses ``limit.low`` itself."""

    limit: Limit
    name: str
    fix: str
    low_open: bool = False

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        low = {"gt": self.limit.low} if self.low_open else {"ge": self.limit.low}
        bounded = handler.generate_schema(
            Annotated[source, Field(**low, le=self.limit.high, allow_inf_nan=False)])
        message = (f"{self.name} must be a finite number "
                   f"{self.limit.describe(low_open=self.low_open)} — fix: {self.fix}")
        return core_schema.custom_error_schema(bounded, custom_error_type="bounded_number",
                                               custom_error_message=message)


CarbonPriceEurPerT = Annotated[float, _Bounded(
    CARBON_PRICE_EUR_PER_T, "carbon_price_eur_per_t",
    "give the carbon price in EUR per tonne CO2eq, e.g. 80")]

#: The most facility energy one placement may meter in one hour (kWh): 10 GWh, over 20 times
#: the largest placement a bid can ask for (100,000 GPUs x 1.3 kW x PUE 3 = 0.4 GWh). Bounded
#: so that every true-up is an amount the ledger's integer cents can hold.
MAX_METERED_KWH = 1e7
MeteredKwh = Annotated[float, Field(ge=0, le=MAX_METERED_KWH, allow_inf_nan=False)]
#: A metered intensity has the same sane bounds as a reported or bundled one.
MeteredIntensity = Annotated[float, _Bounded(
    CARBON_G_PER_KWH, "carbon_g_per_kwh",
    "report the grid's carbon intensity over the hour in gCO2eq per kWh (not per MWh)")]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:@-]{1,100}$")]
GpuType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
Signal = Literal["direct", "lifecycle"]
# pydantic publishes a dict keyed by GpuType as patternProperties alone, which in JSON Schema
# lets any other key through; the exchange refuses those (422), so the schema says so too.
_ONLY_GPU_TYPE_KEYS: dict[str, Any] = {"additionalProperties": False}


class _Body(BaseModel):
    """Strict bodies: unknown fields are refused, so a typo is a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetryHour(_Body):
    """One hour of a site's forecast: free GPUs by type and its zone's grid."""

    hour_utc: ReportHour
    gpus_free: dict[GpuType, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        max_length=MAX_TYPES, description="free whole GPUs by GPU type for this hour",
        json_schema_extra=_ONLY_GPU_TYPE_KEYS)
    carbon_g_per_kwh: Annotated[float, _Bounded(
        CARBON_G_PER_KWH, "carbon_g_per_kwh",
        "report the grid's carbon intensity in gCO2eq per kWh (not per MWh)")] = Field(
        description="grid carbon intensity, gCO2eq/kWh")
    price_eur_per_mwh: Annotated[float, _Bounded(
        PRICE_EUR_PER_MWH, "price_eur_per_mwh",
        "report the zone's wholesale price in EUR per MWh (not per kWh, not in local "
        "currency)")] = Field(description="zone's wholesale price, EUR/MWh")


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
    value_eur: Annotated[float, _Bounded(
        BID_VALUE_EUR, "value_eur", "give the most the member will pay for the whole job in "
        "EUR, e.g. 25000", low_open=True)]
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
    """One placement-hour as metered: facility kWh in that hour and, optionally, the actual
    intensity (gCO2eq/kWh, of the round's signal). The placement is named as
    ``GET /v1/sites/{site_id}/assignments`` names it: the member's ``bid_id``, with its
    ``member`` when two members placed bids of that id on the site (bid ids are unique per
    member only); ``<member>:<bid_id>`` (the bundle's form) is accepted as ``bid_id`` too."""

    bid_id: Ident
    member: Ident | None = None
    hour_utc: UtcHour
    energy_kwh: MeteredKwh
    carbon_g_per_kwh: MeteredIntensity | None = None


class MeteringReport(_Body):
    """``POST /v1/sites/{site_id}/metering``: metered energy of placements on the site;
    idempotent by ``report_id`` like telemetry."""

    report_id: Ident
    round_id: Ident
    rows: list[MeteringRow] = Field(min_length=1, max_length=MAX_HOURS * 64)


#: The longest market round: 31 days of hours.
MAX_ROUND_HOURS = 24 * 31
#: The longest solver time limit a planner may give a round (seconds; the clearing holds the
#: worker that long).
MAX_TIME_LIMIT_S = 3600.0

RoundState = Literal["open", "gate_closed", "clearing", "cleared", "settled", "failed"]
BidState = Literal["submitted", "withdrawn"]


class AsksIn(_Body):
    """``PUT /v1/sites/{site_id}/asks``: the site's ask per GPU type it pools, EUR per
    GPU-hour on top of energy (0 to 1,000); types not named keep their ask."""

    asks: dict[GpuType, Annotated[float, _Bounded(
        ASK_EUR_PER_GPU_HOUR, "each ask in asks",
        "give each GPU type's ask in EUR per GPU-hour on top of energy, e.g. 1.25")]] = Field(
        min_length=1, max_length=MAX_TYPES, json_schema_extra=_ONLY_GPU_TYPE_KEYS)


def _check_window(start: datetime, end: datetime, prefix: str) -> None:
    """A round's window: end after start, at most :data:`MAX_ROUND_HOURS` hours."""
    if end <= start:
        raise ValueError(f"{prefix}end_utc must be after {prefix}start_utc (the end is "
                         "exclusive)")
    hours = (end - start).total_seconds() / 3600
    if hours > MAX_ROUND_HOURS:
        raise ValueError(f"the window is {hours:g} h; a round spans at most "
                         f"{MAX_ROUND_HOURS} h (31 days): split it into rounds")


class RoundIn(_Body):
    """``POST /v1/rounds``: open a market round for the window [``window_start_utc``,
    ``window_end_utc``) (end exclusive, at most 31 days) at a carbon price in EUR per tonne
    CO2eq, with the carbon signal its emissions are counted in, and optionally the solver's
    time limit for it (seconds)."""

    window_start_utc: UtcHour
    window_end_utc: UtcHour
    carbon_price_eur_per_t: CarbonPriceEurPerT
    carbon_signal: Signal
    time_limit_s: Annotated[float | None, Field(
        gt=0, le=MAX_TIME_LIMIT_S, allow_inf_nan=False,
        description="the solver's time limit for this round in seconds (default: the "
                    "server's --solve-time-limit)")] = None

    @model_validator(mode="after")
    def _window(self) -> RoundIn:
        _check_window(self.window_start_utc, self.window_end_utc, "window_")
        return self


class OutlookQuery(_Body):
    """``GET /v1/outlook/{name}``'s query: the window [``start_utc``, ``end_utc``) (at most
    31 days, like a round), the carbon signal of ``grid.csv`` and the carbon price written
    into ``market.toml`` (EUR per tonne CO2eq; 0 unless given)."""

    start_utc: UtcHour
    end_utc: UtcHour
    carbon_signal: Signal
    carbon_price_eur_per_t: CarbonPriceEurPerT = 0.0

    @model_validator(mode="after")
    def _window(self) -> OutlookQuery:
        _check_window(self.start_utc, self.end_utc, "")
        return self


class _Out(BaseModel):
    """Answers: unknown fields are ignored by readers, so the exchange can add fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ErrorOut(_Out):
    """Every refusal other than a validation error: ``detail`` says what and how to fix."""

    detail: str


class HealthOut(_Out):
    """``GET /healthz``."""

    status: Literal["ok"]


class WhoAmIOut(_Out):
    """``GET /v1/whoami``: the caller's token id, role and subject (the site id of a site
    token, the member code of a member token, else none)."""

    token_id: str
    role: Literal["site", "member", "planner", "treasurer", "admin"]
    subject: str | None


class MemberOut(_Out):
    """An alliance member: ISO code, name, share of common costs (0..1)."""

    member: str
    name: str
    pledge_share: float


class GpuTypeOut(_Out):
    """A GPU type: IT power per GPU incl. its node share (kW), board power (kW), speed
    relative to an H100, GPUs per node, reference ask (EUR per GPU-hour)."""

    gpu_type: str
    name: str
    it_kw: float
    board_kw: float
    relative_speed: float
    gpus_per_node: int
    ref_ask_eur_per_gpu_hour: float


class PoolOut(_Out):
    """A site's pool of one GPU type: pooled GPUs and the site's ask (EUR per GPU-hour)."""

    gpu_type: str
    gpus: int
    ask_eur_per_gpu_hour: float


class SiteOut(_Out):
    """A pooled site: its grid zone, jurisdiction (ISO code), PUE, tariff adder (EUR/MWh on
    top of the zone's price), owner member, location and GPU pools."""

    site_id: str
    name: str
    member: str
    zone: str
    jurisdiction: str
    timezone: str
    lat: float
    lon: float
    pue: float
    tariff_adder_eur_per_mwh: float
    pools: list[PoolOut]


class RegistryOut(_Out):
    """``GET /v1/registry``: the alliance's members, GPU types and sites with pools."""

    members: list[MemberOut]
    gpu_types: list[GpuTypeOut]
    sites: list[SiteOut]


class RoundOut(_Out):
    """A market round. Stamps: hours as ``2023-07-03T00:00Z``, instants as
    ``2023-07-03T09:12:30.000Z``; ``reason`` says why a ``failed`` round failed."""

    round_id: str
    state: RoundState
    window_start_utc: str
    window_end_utc: str
    carbon_price_eur_per_t: float
    carbon_signal: Signal
    time_limit_s: float | None = None
    created_at_utc: str
    updated_at_utc: str
    reason: str | None = None
    progress: str | None = Field(
        default=None, description="what the clearing worker is doing (claimed, bound, "
        "search, pricing, storing, done, failed); null before a worker took the round")


class BidOut(_Out):
    """A stored bid (:class:`BidIn` plus who, which round, its state and when)."""

    round_id: str
    member: str
    bid_id: str
    gpus: int
    options: list[GpuOption]
    release_utc: str
    deadline_utc: str
    value_eur: float
    allowed_jurisdictions: list[str]
    state: BidState
    submitted_at_utc: str
    amended_at_utc: str | None = None
    withdrawn_at_utc: str | None = None


class PlacementOut(_Out):
    """An accepted bid of a cleared round: where and when it runs, and its money (EUR for
    the whole job; costs positive, ``payment_eur`` is what the member pays, ``uplift_eur``
    what the alliance covers above the bid's value)."""

    round_id: str
    member: str
    bid_id: str
    site_id: str
    gpu_type: str
    start_utc: str
    end_utc: str
    gpus: int
    energy_kwh: float
    emissions_kg: float
    energy_cost_eur: float
    ask_eur: float
    carbon_fee_eur: float
    capacity_eur: float
    value_eur: float
    payment_eur: float
    uplift_eur: float


class AssignmentOut(_Out):
    """A job placed on the site: ``gpus`` GPUs of ``gpu_type`` for [``start_utc``,
    ``end_utc``); ``metered_hours_utc`` are its hours the exchange already holds metering of
    (an agent meters only the others, so a fresh spool never meters an hour twice)."""

    round_id: str
    round_state: RoundState | None = None  # None from an exchange that predates the field
    member: str
    bid_id: str
    gpu_type: str
    gpus: int
    start_utc: str
    end_utc: str
    metered_hours_utc: list[str] = Field(default_factory=list)


class RejectedOut(_Out):
    """A bid the cleared round did not place: ``reason`` (``no_site``, ``no_window``,
    ``below_cost``, ``emissions_cap``, ``not_selected``, ``outbid``, ``outside_window``),
    ``detail`` in words, and ``lost_opportunity_eur`` (> 0: rejected paradoxically — its
    value exceeded its cost at the round's prices; EUR)."""

    round_id: str
    member: str
    bid_id: str
    reason: str
    detail: str | None
    lost_opportunity_eur: float | None


class PriceOut(_Out):
    """A capacity price of a cleared round, EUR per GPU-hour (>= 0)."""

    site_id: str
    gpu_type: str
    hour_utc: str
    capacity_price_eur_per_gpu_hour: float


class PostingOut(_Out):
    """A ledger line of a round: integer euro cents, positive = the account receives."""

    posting_id: str
    round_id: str
    bid_id: str | None
    account: str
    kind: str
    amount_cents: int
    posted_at_utc: str


__all__ = [
    "MAX_HOURS",
    "MAX_METERED_KWH",
    "MAX_ROUND_HOURS",
    "MAX_TYPES",
    "Ack",
    "AsksIn",
    "AssignmentOut",
    "BidIn",
    "BidOut",
    "BidState",
    "ErrorOut",
    "GpuOption",
    "GpuTypeOut",
    "HealthOut",
    "MemberOut",
    "MeteringReport",
    "MeteringRow",
    "OutlookQuery",
    "PlacementOut",
    "PoolOut",
    "PostingOut",
    "PriceOut",
    "RegistryOut",
    "RejectedOut",
    "RoundIn",
    "RoundOut",
    "RoundState",
    "Signal",
    "SiteOut",
    "TelemetryHour",
    "TelemetryReport",
    "WhoAmIOut",
]

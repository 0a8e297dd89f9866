"""The shapes every data source returns, so pages never care where the data came from.

Units follow DESIGN.md's glossary: times are ``Datetime("us", "UTC")`` hour-beginning stamps
and every interval is half-open ``[start, end)``; GPUs are whole GPUs; carbon intensity is
gCO2eq/kWh of one signal (``direct`` or ``lifecycle``, never mixed); electricity prices are
EUR/MWh; money is EUR; emissions are kg CO2eq; carbon prices are EUR per tonne CO2eq.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import polars as pl

from gridbridge.hours import parse_hour_column
from optim.clearing import PLACEMENT_SCHEMA, PRICE_SCHEMA

__all__ = [
    "BID_SCHEMA",
    "CAPACITY_SCHEMA",
    "GRID_SCHEMA",
    "PLACEMENT_SCHEMA",
    "PRICE_SCHEMA",
    "REJECTED_SCHEMA",
    "SITE_SCHEMA",
    "UTC_HOUR",
    "Outlook",
    "Role",
    "RoundInfo",
    "RoundResult",
    "Viewer",
    "frame",
    "typed",
]

UTC_HOUR = pl.Datetime("us", "UTC")
Role = Literal["site", "member", "planner", "treasurer", "admin"]

#: Bids as the Bids page lists them. ``bid_id`` is the member's own id (unique per member:
#: the key is ``(member, bid_id)``); ``gpu_options`` is ``H100:24;A100:56`` (type:hours);
#: ``deadline_utc`` is exclusive; ``allowed_jurisdictions`` is a ``;``-list or ``*``;
#: ``state`` is ``submitted``, ``withdrawn`` or ``draft`` (bundle mode: not in any file).
BID_SCHEMA: dict[str, pl.DataType] = {
    "member": pl.String(), "bid_id": pl.String(), "gpu_options": pl.String(),
    "gpus": pl.Int64(), "release_utc": UTC_HOUR, "deadline_utc": UTC_HOUR,
    "value_eur": pl.Float64(), "allowed_jurisdictions": pl.String(), "state": pl.String(),
}
#: Rejected bids: ``reason`` is a code (no_site, no_window, below_cost, emissions_cap,
#: not_selected, outbid, outside_window); ``lost_opportunity_eur`` > 0 means rejected
#: paradoxically (null when the clearing was not priced).
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "member": pl.String(), "bid_id": pl.String(), "reason": pl.String(),
    "detail": pl.String(), "lost_opportunity_eur": pl.Float64(),
}
#: Pooled sites: ``pooled_gpus`` is every GPU the site pools (all types).
SITE_SCHEMA: dict[str, pl.DataType] = {
    "site_id": pl.String(), "name": pl.String(), "member": pl.String(), "zone": pl.String(),
    "jurisdiction": pl.String(), "lat": pl.Float64(), "lon": pl.Float64(), "pue": pl.Float64(),
    "tariff_adder_eur_per_mwh": pl.Float64(), "pooled_gpus": pl.Int64(),
}
#: Free GPUs per pool and hour, and the site's ask (EUR per GPU-hour on top of energy).
CAPACITY_SCHEMA: dict[str, pl.DataType] = {
    "site_id": pl.String(), "gpu_type": pl.String(), "hour_utc": UTC_HOUR,
    "gpus_available": pl.Int64(), "ask_eur_per_gpu_hour": pl.Float64(),
}
#: A zone's grid per hour: intensity of the outlook's one signal, wholesale price.
GRID_SCHEMA: dict[str, pl.DataType] = {
    "zone": pl.String(), "hour_utc": UTC_HOUR, "carbon_g_per_kwh": pl.Float64(),
    "price_eur_per_mwh": pl.Float64(),
}


def typed(data: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """``data`` as exactly ``schema``'s columns, in order, cast to their types.

    Datetime columns may be text stamps (``2023-07-03T14:00Z``, as CSV and JSON carry
    them); they are parsed. Missing columns become nulls; other columns are dropped.
    """
    columns = []
    for name, dtype in schema.items():
        column = (data[name] if name in data.columns
                  else pl.Series(name, [None] * data.height, dtype=pl.String))
        if dtype == UTC_HOUR and column.dtype == pl.String:
            column = parse_hour_column(column)[0]
        columns.append(column.cast(dtype).alias(name))
    return pl.DataFrame(columns, schema=schema)


def frame(rows: list[dict[str, object]], schema: Mapping[str, Any]) -> pl.DataFrame:
    """``rows`` (e.g. JSON answers) as :func:`typed` makes them."""
    text = {c: (pl.String() if t == UTC_HOUR else t) for c, t in schema.items()}
    return typed(pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=text,
                              orient="row"), schema)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the role of the exchange token (bundle mode: ``admin``, since the
    reader holds every file), and the member code or site id when known."""

    role: Role
    subject: str | None = None
    offline: bool = False

    @property
    def can_plan(self) -> bool:
        """May open, close and clear rounds (and run what-ifs on their bids)."""
        return self.role in ("planner", "admin")

    @property
    def can_bid(self) -> bool:
        """May submit and withdraw bids: member tokens, and anyone drafting offline."""
        return self.role == "member" or self.offline

    @property
    def sees_alliance(self) -> bool:
        """Sees every member's bids, results and statements (not only its own)."""
        return self.role in ("planner", "treasurer", "admin")

    def label(self) -> str:
        """``planner``, ``member KR``, ``site KR-SUWON-1``..."""
        return self.role if self.subject is None else f"{self.role} {self.subject}"


@dataclass(frozen=True, slots=True)
class RoundInfo:
    """A market round: its window ``[window_start_utc, window_end_utc)`` (UTC), carbon
    price (EUR/t CO2eq) and signal, state (``open`` ... ``cleared``, ``settled``,
    ``failed``), and what the clearing worker is doing (``progress``) or why it failed."""

    round_id: str
    state: str
    window_start_utc: datetime
    window_end_utc: datetime
    carbon_price_eur_per_t: float
    carbon_signal: str
    progress: str | None = None
    reason: str | None = None

    @property
    def cleared(self) -> bool:
        """Results exist (``cleared`` or ``settled``)."""
        return self.state in ("cleared", "settled")

    def label(self) -> str:
        """One line for a picker."""
        return (f"{self.round_id} · {self.window_start_utc:%Y-%m-%d %H:%M}–"
                f"{self.window_end_utc:%Y-%m-%d %H:%M} UTC · {self.state}")


@dataclass(frozen=True, slots=True)
class RoundResult:
    """A clearing's results: stored (the round's) or a what-if computed in the app.

    ``placements`` has :data:`PLACEMENT_SCHEMA` (EUR per whole job; ``bid_id`` the member's
    own id), ``rejected`` :data:`REJECTED_SCHEMA`, ``prices`` :data:`PRICE_SCHEMA` (EUR per
    GPU-hour; empty when not priced). ``summary`` is summary.json's content (None when the
    viewer may not read it). ``capacity`` (:data:`CAPACITY_SCHEMA`) is what the round
    offered, for utilisation (None when unknown). ``solve_s`` is the wall time of the solve
    (seconds; None when unknown); ``what_if`` says the result is not stored anywhere.
    """

    placements: pl.DataFrame
    rejected: pl.DataFrame
    prices: pl.DataFrame
    summary: dict[str, object] | None
    capacity: pl.DataFrame | None
    solve_s: float | None = None
    what_if: bool = False
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Outlook:
    """The alliance over a window ``[start_utc, end_utc)``: sites (:data:`SITE_SCHEMA`),
    free GPUs per pool and hour (:data:`CAPACITY_SCHEMA`) and each zone's grid
    (:data:`GRID_SCHEMA`, intensity of ``signal``); hours without data are absent."""

    start_utc: datetime
    end_utc: datetime
    signal: str
    sites: pl.DataFrame
    capacity: pl.DataFrame
    grid: pl.DataFrame

"""The validated inputs of one market round, as the core sees them.

A :class:`Market` is what ``gridbridge``'s bundle reader returns after strict validation: the
tables of DESIGN.md's "Market bundle" as typed polars frames. The core trusts these (it is
``gridbridge``'s job to reject bad files); :meth:`Market.__post_init__` only checks that every
required column is there with the right type, which catches programming errors early.

Units (DESIGN.md glossary): times are UTC hour-beginning ``Datetime("us", "UTC")``; every
interval is half-open ``[start, end)``; GPU counts are whole GPUs; power in kW; energy in
kWh; carbon intensity in gCO2eq/kWh; prices in EUR/MWh; money in EUR; carbon price in
EUR per tonne CO2eq.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from optim.errors import MarketInputError

UTC_HOUR = pl.Datetime("us", "UTC")
CarbonSignal = Literal["direct", "lifecycle"]
CARBON_SIGNALS: tuple[str, ...] = ("direct", "lifecycle")

#: Required columns of each table and their types after validation. More columns are
#: allowed and kept. ``bid_options`` is not a file: it is ``bids.gpu_options`` parsed into
#: one row per (bid, GPU type) with the job's duration on that type in hours.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "members": {"member": pl.String(), "name": pl.String(), "pledge_share": pl.Float64()},
    "gpus": {"gpu_type": pl.String(), "it_kw": pl.Float64(), "board_kw": pl.Float64()},
    "sites": {
        "site_id": pl.String(),
        "member": pl.String(),
        "zone": pl.String(),
        "jurisdiction": pl.String(),
        "lat": pl.Float64(),
        "lon": pl.Float64(),
        "pue": pl.Float64(),
        "tariff_adder_eur_per_mwh": pl.Float64(),
    },
    "capacity": {
        "site_id": pl.String(),
        "gpu_type": pl.String(),
        "hour_utc": UTC_HOUR,
        "gpus_available": pl.Int64(),
        "ask_eur_per_gpu_hour": pl.Float64(),
    },
    "grid": {
        "zone": pl.String(),
        "hour_utc": UTC_HOUR,
        "carbon_direct_g_per_kwh": pl.Float64(),
        "carbon_lifecycle_g_per_kwh": pl.Float64(),
        "price_eur_per_mwh": pl.Float64(),
    },
    "bids": {
        "bid_id": pl.String(),
        "member": pl.String(),
        "gpu_options": pl.String(),
        "gpus": pl.Int64(),
        "release_utc": UTC_HOUR,
        "deadline_utc": UTC_HOUR,
        "value_eur": pl.Float64(),
        "allowed_jurisdictions": pl.String(),
    },
    "bid_options": {"bid_id": pl.String(), "gpu_type": pl.String(), "duration_h": pl.Int64()},
}

#: The tables of a bundle that are files, in the order they are read and reported.
TABLES: tuple[str, ...] = ("members", "gpus", "sites", "capacity", "grid", "bids")


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """``market.toml``: the round's window, carbon price and optional solver limits.

    ``window_end_utc`` is exclusive. ``carbon_price_eur_per_t`` is EUR per tonne CO2eq of the
    chosen ``carbon_signal``. ``time_limit_s`` (seconds) and ``mip_rel_gap`` (fraction, 0.01 =
    1 %) are optional defaults for the solver; ``extra`` keeps any other keys verbatim.
    """

    window_start_utc: datetime
    window_end_utc: datetime
    carbon_price_eur_per_t: float
    carbon_signal: CarbonSignal
    time_limit_s: float | None = None
    mip_rel_gap: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def hours(self) -> int:
        """Number of hourly slots in the window."""
        return int((self.window_end_utc - self.window_start_utc) / timedelta(hours=1))

    def hour_slots(self) -> list[datetime]:
        """Every hour-beginning in ``[window_start_utc, window_end_utc)``."""
        return [self.window_start_utc + timedelta(hours=h) for h in range(self.hours)]


@dataclass(frozen=True, slots=True)
class Market:
    """One validated market round: config plus the typed tables of SCHEMAS."""

    config: MarketConfig
    members: pl.DataFrame
    gpus: pl.DataFrame
    sites: pl.DataFrame
    capacity: pl.DataFrame
    grid: pl.DataFrame
    bids: pl.DataFrame
    bid_options: pl.DataFrame

    def __post_init__(self) -> None:
        for name, schema in SCHEMAS.items():
            frame: pl.DataFrame = getattr(self, name)
            for column, dtype in schema.items():
                if column not in frame.columns:
                    raise MarketInputError(
                        f"Market.{name} lacks column '{column}'; build markets with "
                        "gridbridge.bundle.read_bundle or make_market, which validate them"
                    )
                if frame.schema[column] != dtype:
                    raise MarketInputError(
                        f"Market.{name}.{column} is {frame.schema[column]}, expected {dtype}; "
                        "cast it before building the Market"
                    )

    def table(self, name: str) -> pl.DataFrame:
        """The table called ``name`` (one of SCHEMAS)."""
        return getattr(self, name)

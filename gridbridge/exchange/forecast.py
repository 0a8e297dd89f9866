"""A telemetry report's hours as the exchange stores them: one JSON document per report.

A report's forecast (free GPUs by type, the zone's carbon intensity and price, per hour) is
written as one text column of its ``exchange_telemetry_reports`` row, with the span of its
hours beside it, instead of one row per hour and GPU type: ingest is then one insert per
report whatever its length, and gate closure reads only the reports it needs
(:mod:`gridbridge.exchange.snapshot`). The document, hours in time order::

    {"hour_utc": ["2023-07-03T14:00Z", ...],
     "gpus_free": [{"A100": 12, "H100": 4}, ...],     # whole GPUs; a type left out = 0
     "carbon_g_per_kwh": [312.5, ...],                 # the report's signal, gCO2eq/kWh
     "price_eur_per_mwh": [88.1, ...]}                 # EUR/MWh, may be negative

Pure: no database, no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import orjson

from gridbridge.hours import format_hour, parse_hour

__all__ = ["HourForecast", "PackedForecast", "pack", "pack_columns", "unpack"]


@dataclass(frozen=True, slots=True)
class HourForecast:
    """One hour of one report: free GPUs by type, gCO2eq/kWh, EUR/MWh."""

    gpus_free: Mapping[str, int]
    carbon_g_per_kwh: float
    price_eur_per_mwh: float


@dataclass(frozen=True, slots=True)
class PackedForecast:
    """The stored form: ``[first_hour_utc, end_hour_utc)`` (end = last hour + 1 h) and the
    JSON document (module doc)."""

    first_hour_utc: str
    end_hour_utc: str
    forecast_json: str


def pack(hours: Iterable[tuple[str, HourForecast]]) -> PackedForecast:
    """The stored form of ``(hour_utc, values)`` pairs (hour text as
    :data:`gridbridge.hours.HOUR_FORMAT`; distinct hours, at least one)."""
    ordered = sorted(hours, key=lambda pair: pair[0])  # text order is time order
    return pack_columns([hour for hour, _ in ordered],
                        [dict(values.gpus_free) for _, values in ordered],
                        [values.carbon_g_per_kwh for _, values in ordered],
                        [values.price_eur_per_mwh for _, values in ordered])


def pack_columns(hour_utc: list[str], gpus_free: list[dict[str, int]],
                 carbon_g_per_kwh: list[float], price_eur_per_mwh: list[float]) -> PackedForecast:
    """The stored form of hours given as the document's columns, already in time order
    (hour text as :data:`gridbridge.hours.HOUR_FORMAT`, distinct, at least one; free GPUs
    as dicts by type, gCO2eq/kWh, EUR/MWh): what :func:`pack` builds, without an object per
    hour (telemetry ingest packs hundreds of hours per report)."""
    if not hour_utc:
        raise ValueError("a forecast has at least one hour")
    document = {"hour_utc": hour_utc, "gpus_free": gpus_free,
                "carbon_g_per_kwh": carbon_g_per_kwh, "price_eur_per_mwh": price_eur_per_mwh}
    end = format_hour(parse_hour(hour_utc[-1]) + timedelta(hours=1))
    return PackedForecast(hour_utc[0], end, orjson.dumps(document).decode("utf-8"))


def unpack(forecast_json: str) -> dict[str, HourForecast]:
    """hour_utc -> its values, from the stored document."""
    document = orjson.loads(forecast_json)
    return {hour: HourForecast(gpus, carbon, price) for hour, gpus, carbon, price in zip(
        document["hour_utc"], document["gpus_free"], document["carbon_g_per_kwh"],
        document["price_eur_per_mwh"], strict=True)}

"""Read hourly wholesale electricity prices on a local clock, and make flat tariffs.

Input format: ``Datetime`` (naive local time, hour-beginning, e.g. ``2023-01-01 00:00:00``)
and exactly one ``Price (<CUR>/MWh)`` column, ``<CUR>`` an ISO 4217 code (KRW, SGD, CAD,
EUR). Local times are mapped to UTC by :mod:`gridbridge.importers.localclock`.

Output: ``zone``, ``hour_utc``, ``price_eur_per_mwh``, ``estimated``. Prices are converted
as EUR/MWh = local/MWh ÷ ``fx_per_eur`` where ``fx_per_eur`` means "1 EUR = fx units of the
local currency" (1 for EUR data). Prices may be negative (a producer pays to deliver);
NaN, empty and infinite values are errors, and so is a price that, converted, lies outside
the sane bounds of :data:`gridbridge.limits.PRICE_EUR_PER_MWH` (a wrong currency or FX rate).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl

from gridbridge.errors import InputError
from gridbridge.hours import format_hour
from gridbridge.importers import (
    HOUR_DTYPE,
    ImportResult,
    check_fx,
    check_limit,
    complete_year,
    import_error,
    parse_number_column,
    parse_stamp_column,
    read_text_csv,
    year_hours,
)
from gridbridge.importers.localclock import localize_hours, parse_clock
from gridbridge.limits import PRICE_EUR_PER_MWH

__all__ = ["flat_tariff", "read_price_csv"]

TIME = "Datetime"
_PRICE = re.compile(r"^price\s*\(\s*([a-z]{3})\s*/\s*mwh\s*\)$", re.IGNORECASE)
VALUE_COLUMNS = ["price_eur_per_mwh"]


def _currency_code(currency: str) -> str:
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise InputError(f"currency '{currency}' is not a 3-letter code — fix: use e.g. EUR, CAD")
    return code


def _find_columns(header: list[str], source: Path) -> tuple[str, str, str]:
    """(time column, price column, currency code read from the price header)."""
    times = [h for h in header if h.strip().casefold() == TIME.casefold()]
    prices = [(h, m.group(1).upper()) for h in header if (m := _PRICE.match(h.strip()))]
    expected = "expected 'Datetime' and one 'Price (<CUR>/MWh)' column, e.g. 'Price (KRW/MWh)'"
    if not times or not prices:
        missing = ([] if times else ["'Datetime'"]) + ([] if prices else ["'Price (<CUR>/MWh)'"])
        raise import_error(
            source,
            f"missing column(s) {', '.join(missing)}; {expected}; found {header}",
            "name the columns as in the price files (the currency goes in the price header)",
        )
    if len(prices) > 1:
        raise import_error(
            source,
            f"{len(prices)} price columns ({', '.join(h for h, _ in prices)}); {expected}",
            "keep one price column per file",
        )
    return times[0], prices[0][0], prices[0][1]


def read_price_csv(
    path: str | Path,
    zone: str,
    clock: str,
    fx_per_eur: float,
    currency: str | None = None,
    year: int | None = None,
) -> ImportResult:
    """Import one zone's hourly prices and convert them to UTC hours and EUR/MWh.

    ``clock`` is an IANA zone or a fixed offset (see :func:`localclock.parse_clock`);
    ``currency`` if given must match the file's header. With ``year``, only that UTC
    year's hours are kept and every missing hour (the year's edges after the shift to UTC,
    a dropped fall-back hour) is filled from the nearest hour and flagged estimated.
    """
    source = Path(path)
    zone = zone.strip()
    if not zone:
        raise InputError("the zone is empty — fix: pass a zone id like DE (--zone)")
    parsed_clock = parse_clock(clock)
    raw = read_text_csv(source)
    time_col, price_col, file_currency = _find_columns(raw.columns, source)
    if currency is not None and _currency_code(currency) != file_currency:
        raise import_error(
            source,
            f"prices are in {file_currency} (header '{price_col}'), not {currency.upper()}",
            f"pass --currency {file_currency} with the FX rate for {file_currency}",
            column=price_col,
        )
    check_fx(fx_per_eur, file_currency)
    if raw.height == 0:
        raise import_error(source, "the file has a header but no data rows", "export the data")
    local = parse_stamp_column(raw[time_col], source, time_col, utc=False)
    values = parse_number_column(
        raw[price_col], source, price_col, allow_negative=True, unit=f"{file_currency}/MWh"
    )
    check_limit(values / fx_per_eur, PRICE_EUR_PER_MWH, raw[price_col], source, price_col,
                f"check the file's currency ({file_currency}) and the FX rate (units of "
                f"{file_currency} per 1 EUR)",
                converted=f"at 1 EUR = {fx_per_eur:g} {file_currency}")
    mapped = localize_hours(
        local.to_list(), parsed_clock, values.to_list(), source=source, column=time_col
    )
    notes = [
        f"{source.name}: {raw.height} hourly row(s) of zone {zone} on clock "
        f"{parsed_clock.name}, {file_currency}/MWh converted at 1 EUR = {fx_per_eur:g} "
        f"{file_currency}",
        *mapped.notes,
    ]
    frame = (
        pl.DataFrame(
            {
                "zone": pl.Series([zone] * raw.height, dtype=pl.String),
                "hour_utc": pl.Series(mapped.utc, dtype=HOUR_DTYPE),
                "price_eur_per_mwh": values / fx_per_eur,
                "estimated": pl.Series([False] * raw.height, dtype=pl.Boolean),
            }
        )
        .drop_nulls("hour_utc")
        .sort("hour_utc")
    )
    # localize_hours refuses repeats, so two rows for one UTC hour mean a logic error here.
    assert frame["hour_utc"].is_unique().all(), "duplicate UTC hours after localisation"
    if year is None:
        return ImportResult(frame, notes)
    completed = complete_year(frame, year, VALUE_COLUMNS, source)
    return ImportResult(completed.frame, notes + completed.notes)


def flat_tariff(
    zone: str, year: int, value: float, currency: str, fx_per_eur: float
) -> ImportResult:
    """Every UTC hour of ``year`` at ``value`` ``currency``/MWh, i.e. value/fx EUR/MWh.

    For zones without a wholesale market (Quebec: Hydro-Québec rate L, 65 CAD/MWh). The
    hours are not estimated: the tariff is the real price, it just does not vary.
    """
    code = _currency_code(currency)
    zone = zone.strip()
    if not zone:
        raise InputError("the zone is empty — fix: pass a zone id like CA-QC (--zone)")
    check_fx(fx_per_eur, code)
    if not math.isfinite(value):
        raise InputError(f"tariff {value} is not a finite number — fix: give the price per MWh")
    hours = year_hours(year)
    eur = value / fx_per_eur
    if not PRICE_EUR_PER_MWH.admits(eur):
        raise InputError(
            f"tariff {value:g} {code}/MWh is {eur:g} EUR/MWh at 1 EUR = {fx_per_eur:g} {code}, "
            f"not {PRICE_EUR_PER_MWH.describe()} — fix: give the tariff per MWh in {code} and "
            f"the FX rate as units of {code} per 1 EUR")
    frame = pl.DataFrame(
        {
            "zone": pl.Series([zone] * hours.len(), dtype=pl.String),
            "hour_utc": hours,
            "price_eur_per_mwh": pl.Series([eur] * hours.len(), dtype=pl.Float64),
            "estimated": pl.Series([False] * hours.len(), dtype=pl.Boolean),
        }
    )
    note = (
        f"flat tariff for zone {zone}: {value:g} {code}/MWh at 1 EUR = {fx_per_eur:g} {code} "
        f"= {eur:.4f} EUR/MWh for all {hours.len()} hours of {year} "
        f"({format_hour(hours[0])} to {format_hour(hours[-1])})"
    )
    return ImportResult(frame, [note])

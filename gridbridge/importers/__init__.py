"""Importers for raw grid data: carbon intensity, wholesale prices and flat tariffs.

Every importer returns an :class:`ImportResult`: a polars table on the UTC hour grid plus
human-readable notes on what was done to the raw data (rows dropped, hours filled, how
daylight-saving hours were handled). The tables have one row per ``(zone, hour_utc)``:

- carbon (:mod:`gridbridge.importers.electricitymaps`): ``zone``, ``hour_utc``,
  ``carbon_direct_g_per_kwh``, ``carbon_lifecycle_g_per_kwh``, ``estimated``;
- prices (:mod:`gridbridge.importers.prices`): ``zone``, ``hour_utc``,
  ``price_eur_per_mwh``, ``estimated``.

``hour_utc`` is ``Datetime("us", "UTC")``, hour-beginning; intensities are gCO2eq/kWh and
never negative; prices are EUR/MWh and may be negative. ``estimated`` is true where the
source flagged the value as estimated or where GridBridge filled a missing hour.

This module also holds the helpers the importers share: reading a CSV as text, turning a
bad cell into a :class:`~gridbridge.errors.DataImportError` that names file, row, column and
fix, parsing numeric columns, and completing a calendar year of UTC hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from gridbridge.errors import DataImportError, InputError, Problem
from gridbridge.hours import format_hour
from gridbridge.limits import Limit
from gridbridge.textcsv import load_csv_text

__all__ = [
    "HOUR_DTYPE",
    "ImportResult",
    "check_fx",
    "check_limit",
    "complete_year",
    "hour_runs",
    "import_error",
    "parse_number_column",
    "parse_stamp_column",
    "read_text_csv",
    "year_hours",
]

HOUR_DTYPE = pl.Datetime("us", "UTC")
# Years outside this range are almost certainly typos; it also keeps datetime arithmetic
# (offsets of up to a day) far from Python's year 1 / 9999 limits.
_MIN_YEAR, _MAX_YEAR = 1900, 2200


@dataclass(frozen=True, slots=True)
class ImportResult:
    """An imported hourly table and the notes that explain how it was derived."""

    frame: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def import_error(
    source: str | Path,
    message: str,
    fix: str,
    *,
    row: int | None = None,
    column: str | None = None,
    more: int = 0,
) -> DataImportError:
    """A :class:`DataImportError` naming file, 1-based data ``row`` and ``column``.

    ``more`` counts further rows with the same problem, so one message can stand for many.
    """
    if more:
        message += f" (and {more} more row(s) like it)"
    return DataImportError(str(Problem(str(source), row, column, message, fix)))


def read_text_csv(path: str | Path) -> pl.DataFrame:
    """Read a CSV file as a table of strings, one column per header name.

    :func:`gridbridge.textcsv.load_csv_text`: every malformed input (bad encoding, bad
    quoting, ragged rows, empty file) is a precise :class:`DataImportError` listing what is
    wrong, a missing file a :class:`NotFoundError`. A UTF-8 byte-order mark is ignored;
    trailing blank lines are allowed.
    """
    # Importer messages name what is wrong without a verb ("3 field(s) where ..."), unlike
    # the bundle's "has 3 field(s) but ..."; the tests of both pin their wording.
    return load_csv_text(path, ragged="{width} field(s) where the header has {columns}")


def _first(mask: pl.Series) -> tuple[int, int] | None:
    """0-based index of the first true in ``mask`` and how many more there are."""
    hits = mask.fill_null(False).arg_true()
    if hits.len() == 0:
        return None
    return int(hits[0]), hits.len() - 1


def parse_number_column(
    raw: pl.Series, source: str | Path, column: str, *, allow_negative: bool, unit: str
) -> pl.Series:
    """Parse a text column of finite numbers into Float64.

    Empty cells, text, NaN and infinities are errors; negatives are errors unless
    ``allow_negative``. Each message points at the first offending row.
    """
    text = raw.str.strip_chars()
    values = text.cast(pl.Float64, strict=False)
    checks: list[tuple[pl.Series, str, str]] = [
        (text.is_null() | (text == ""), "is empty", f"fill in the value in {unit}"),
        (values.is_null() & (text != ""), "is not a number", f"write a plain number in {unit}"),
        (values.is_nan(), "is NaN", f"replace it with a real value in {unit}"),
        (values.is_infinite(), "is infinite", f"replace it with a finite value in {unit}"),
    ]
    if not allow_negative:
        checks.append(
            (values < 0, "is negative", f"this quantity cannot be negative; correct it ({unit})")
        )
    for mask, what, fix in checks:
        hit = _first(mask)
        if hit is not None:
            i, more = hit
            shown = raw[i]
            raise import_error(
                source, f"value '{shown}' {what}", fix, row=i + 1, column=column, more=more
            )
    return values


def check_limit(
    values: pl.Series,
    limit: Limit,
    raw: pl.Series,
    source: str | Path,
    column: str,
    fix: str,
    *,
    converted: str = "",
) -> None:
    """Refuse the first row whose value (in ``limit``'s unit) lies outside ``limit`` (one of
    :mod:`gridbridge.limits`' sane bounds), naming the cell as written in ``raw``; when the
    cell was converted, ``converted`` says how (``at 1 EUR = 1412.88 KRW``) and the message
    shows the converted value too."""
    hit = _first((values < limit.low) | (values > limit.high))
    if hit is None:
        return
    i, more = hit
    shown = f"value '{raw[i]}'"
    if converted:
        shown += f" ({values[i]:g} {limit.unit} {converted})"
    raise import_error(
        source, f"{shown} is not {limit.describe()}", fix, row=i + 1, column=column, more=more
    )


def _parse_stamp(text: str, utc: bool) -> tuple[datetime | None, str]:
    """One stamp the fast path missed: the naive datetime, or None and why not."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None, "is not a date and time"
    if value.tzinfo is not None:
        offset = value.utcoffset()
        if not utc:
            return None, "carries a UTC offset, but this column holds naive local times"
        if offset:
            return None, f"has offset {offset}, but this column holds UTC times"
        value = value.replace(tzinfo=None)
    return value, ""


def parse_stamp_column(raw: pl.Series, source: str | Path, column: str, *, utc: bool) -> pl.Series:
    """Parse hour-beginning stamps like ``2023-01-01 00:00:00`` into naive ``Datetime("us")``.

    With ``utc`` the stamps are UTC (a ``Z`` or ``+00:00`` suffix is accepted, any other
    offset is an error); without it they are naive local times and any offset is an error.
    Other ISO 8601 spellings are accepted; a stamp not on a whole hour is an error.
    """
    fix = "write times like 2023-01-01 00:00:00" + (" (UTC)" if utc else " (local clock)")
    stamps = raw.str.strip_chars().str.to_datetime(
        "%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"
    )
    if stamps.null_count():
        # Slow path only for the rows the common format missed: say precisely what is wrong.
        parsed = stamps.to_list()
        for i, (text, value) in enumerate(zip(raw.to_list(), parsed, strict=True)):
            if value is not None:
                continue
            value, why = _parse_stamp(text or "", utc)
            if value is None:
                raise import_error(source, f"'{text}' {why}", fix, row=i + 1, column=column)
            parsed[i] = value
        stamps = pl.Series(raw.name, parsed, dtype=pl.Datetime("us"))
    hit = _first(stamps.dt.truncate("1h") != stamps)
    if hit is not None:
        i, more = hit
        raise import_error(
            source,
            f"'{raw[i]}' is not on a whole hour",
            "give hourly data with hour-beginning stamps (minutes and seconds zero)",
            row=i + 1,
            column=column,
            more=more,
        )
    return stamps


def check_fx(fx_per_eur: float, currency: str) -> None:
    """Validate "1 EUR = ``fx_per_eur`` units of ``currency``"."""
    if not math.isfinite(fx_per_eur) or fx_per_eur <= 0:
        raise InputError(
            f"FX rate {fx_per_eur} for {currency} is not a positive finite number — fix: give "
            f"the rate as units of {currency} per 1 EUR, e.g. 1.4595 for CAD"
        )
    if currency == "EUR" and fx_per_eur != 1:
        raise InputError(
            f"FX rate {fx_per_eur} given for EUR data — fix: use 1 (the values are already EUR)"
        )


def year_hours(year: int) -> pl.Series:
    """Every UTC hour-beginning of calendar ``year`` (8,760 or 8,784 of them)."""
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise InputError(f"year {year} is out of range — fix: give a year {_MIN_YEAR}-{_MAX_YEAR}")
    return pl.datetime_range(
        datetime(year, 1, 1, tzinfo=UTC),
        datetime(year + 1, 1, 1, tzinfo=UTC),
        "1h",
        closed="left",
        time_unit="us",
        time_zone="UTC",
        eager=True,
    ).alias("hour_utc")


def hour_runs(hours: list[datetime], limit: int = 5) -> str:
    """Sorted hours as compact runs: ``2023-01-01T00:00Z–2023-01-01T04:00Z (5 h), …``."""
    runs: list[tuple[datetime, datetime, int]] = []
    for hour in hours:
        if runs and (hour - runs[-1][1]).total_seconds() == 3600:
            start, _, n = runs[-1]
            runs[-1] = (start, hour, n + 1)
        else:
            runs.append((hour, hour, 1))
    parts = [
        format_hour(a) if n == 1 else f"{format_hour(a)}–{format_hour(b)} ({n} h)"
        for a, b, n in runs[:limit]
    ]
    if len(runs) > limit:
        parts.append(f"and {len(runs) - limit} more gap(s)")
    return ", ".join(parts)


def complete_year(
    frame: pl.DataFrame, year: int, value_columns: list[str], source: str | Path
) -> ImportResult:
    """Keep ``year``'s UTC hours of a one-zone table and fill every missing hour.

    ``frame`` has ``zone``, ``hour_utc`` (unique), ``value_columns`` and ``estimated``.
    A missing hour takes each value from the nearest present hour (the earlier one on a
    tie) and is flagged ``estimated``: this is the alliance's pinned rule for the hours left
    empty at the year's edges after shifting local clocks to UTC, and for any other gap.
    """
    grid = year_hours(year)
    zone = frame["zone"][0] if frame.height else None
    inside = frame.filter(pl.col("hour_utc").dt.year() == year)
    notes: list[str] = []
    outside = frame.height - inside.height
    if outside:
        notes.append(f"dropped {outside} row(s) outside UTC year {year}")
    if inside.height == 0:
        raise import_error(
            source, f"no data for UTC year {year}", "pick the year the file covers, or omit it"
        )
    full = (
        grid.to_frame()
        .join(inside.with_columns(_present=pl.lit(True)), on="hour_utc", how="left")
        .sort("hour_utc")
    )
    present = pl.col("_present").fill_null(False)
    prev_hour = pl.when(present).then(pl.col("hour_utc")).forward_fill()
    next_hour = pl.when(present).then(pl.col("hour_utc")).backward_fill()
    # Take the earlier neighbour unless only the later one exists or it is strictly closer.
    use_prev = next_hour.is_null() | (
        prev_hour.is_not_null()
        & ((pl.col("hour_utc") - prev_hour) <= (next_hour - pl.col("hour_utc")))
    )
    full = full.with_columns(
        [
            pl.when(present)
            .then(pl.col(c))
            .when(use_prev)
            .then(pl.col(c).forward_fill())
            .otherwise(pl.col(c).backward_fill())
            .alias(c)
            for c in value_columns
        ]
        + [
            pl.lit(zone, dtype=pl.String).alias("zone"),
            (~present | pl.col("estimated").fill_null(True)).alias("estimated"),
        ]
    )
    filled = full.filter(~present)["hour_utc"].to_list()
    if filled:
        notes.append(
            f"filled {len(filled)} missing hour(s) of {year} from the nearest hour, flagged "
            f"estimated: {hour_runs(filled)}"
        )
    out = full.select(["zone", "hour_utc", *value_columns, "estimated"])
    return ImportResult(out, notes)

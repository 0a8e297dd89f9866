"""UTC hour stamps: the one text form GridBridge writes and the strict rules it reads by.

Written form: ``2023-07-03T14:00Z`` (ISO 8601, UTC, hour-beginning). Read leniently in
spelling (``Z`` or ``+00:00``, with or without seconds, ``T`` or space) but strictly in
meaning: a stamp must carry a UTC offset of zero and fall on a whole hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

HOUR_FORMAT = "%Y-%m-%dT%H:%MZ"
ONE_HOUR = timedelta(hours=1)


def format_hour(value: datetime) -> str:
    """``2023-07-03T14:00Z`` for an aware UTC datetime."""
    return value.astimezone(UTC).strftime(HOUR_FORMAT)


class HourParseError(ValueError):
    """A time stamp that is not a UTC whole hour; ``fix`` says how to write it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


_FIX = "write UTC hour-beginning stamps like 2023-07-03T14:00Z"


def parse_hour(text: str) -> datetime:
    """Parse one UTC whole-hour stamp; raise :class:`HourParseError` saying why not."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise HourParseError(f"'{text}' is not an ISO 8601 time", _FIX) from None
    if value.tzinfo is None:
        raise HourParseError(f"'{text}' has no time zone", _FIX + " (add Z for UTC)")
    offset = value.utcoffset()
    if offset:
        raise HourParseError(
            f"'{text}' is not UTC (offset {offset})", _FIX + " (convert to UTC first)"
        )
    if value.minute or value.second or value.microsecond:
        raise HourParseError(f"'{text}' is not on a whole hour", _FIX + " (hour-beginning)")
    return value.astimezone(UTC)


def parse_hour_column(values: pl.Series) -> tuple[pl.Series, dict[int, HourParseError]]:
    """Parse a string column of stamps: the typed column plus errors by 0-based row index.

    The common form is parsed vectorised; only rows that miss it go through
    :func:`parse_hour`, which either accepts a legal variant or says precisely what is wrong.
    """
    fast = values.str.strip_chars().str.to_datetime(
        "%Y-%m-%dT%H:%MZ", time_zone="UTC", time_unit="us", strict=False
    )
    # The fast path must not accept 14:30; such rows fall through to the precise message.
    fast = pl.select(
        pl.when(fast.dt.truncate("1h") == fast).then(fast).otherwise(None).alias(values.name)
    ).to_series()
    errors: dict[int, HourParseError] = {}
    if fast.null_count() == values.null_count():
        return fast, errors
    out = fast.to_list()
    for i, (text, parsed) in enumerate(zip(values.to_list(), out, strict=True)):
        if parsed is not None or text is None:
            continue
        try:
            out[i] = parse_hour(text)
        except HourParseError as exc:
            errors[i] = exc
    return pl.Series(values.name, out, dtype=pl.Datetime("us", "UTC")), errors


def iso_week_window(week: str) -> tuple[datetime, datetime]:
    """``2023-W27`` -> [Monday 00:00Z, next Monday 00:00Z)."""
    try:
        start = datetime.strptime(week + "-1", "%G-W%V-%u").replace(tzinfo=UTC)
    except ValueError:
        raise HourParseError(
            f"'{week}' is not an ISO week", "write the week as YYYY-Www, e.g. 2023-W27"
        ) from None
    return start, start + timedelta(days=7)

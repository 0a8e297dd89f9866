"""Map naive local hour-beginning stamps onto UTC hours, with daylight saving made explicit.

A *clock* is an IANA time zone name (``Europe/Berlin``, ``Asia/Seoul``) or a fixed UTC
offset (``+09:00``, ``-05:00``, ``UTC-05:00``, ``UTC+9``; Ontario's IESO publishes EST all
year, so CA-ON is ``-05:00``). An offset is local time minus UTC: ``-05:00`` means
local 00:00 is 05:00 UTC.

Daylight saving is decided here, by PEP 495 ``fold`` semantics of :mod:`zoneinfo`, and
never by a library default:

- spring forward: a local stamp that does not exist (2023-03-26 02:00 in Berlin, 01:00 in
  London) is dropped; the note says whether its value copied a neighbouring hour's (data
  vendors often fill the hole with such a copy);
- fall back: an ambiguous stamp (2023-10-29 02:00 Berlin, 01:00 London) seen twice maps
  first to the earlier, summer-time instant (``fold=0``) and then to the later,
  standard-time one (``fold=1``); seen once, it maps to the earlier instant and the later
  UTC hour stays missing for the caller's gap rule;
- any other repeated local stamp is an error.

This module does no file I/O; callers pass a ``source`` label used in error messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridbridge.errors import InputError
from gridbridge.hours import format_hour
from gridbridge.importers import import_error

__all__ = ["Clock", "LocalizedHours", "localize_hours", "parse_clock"]

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_ONE_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Clock:
    """A local clock: ``tz`` is a :class:`ZoneInfo` (may observe DST) or a fixed offset."""

    name: str
    tz: tzinfo

    @property
    def fixed(self) -> bool:
        """True for a fixed UTC offset, which has no DST transitions."""
        return not isinstance(self.tz, ZoneInfo)


def parse_clock(text: str) -> Clock:
    """Parse ``Europe/Berlin``, ``+09:00``, ``-05:00``, ``UTC-05:00``, ``UTC+9`` or ``UTC``."""
    raw = text.strip()
    fix = "give an IANA zone like Europe/Berlin or a fixed offset like +09:00 / UTC-05:00"
    if raw.upper() in {"UTC", "Z", "GMT"}:
        return Clock("+00:00", UTC)
    match = _OFFSET.match(raw)
    if match:
        sign, hh, mm = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hh > 14 or mm >= 60:
            raise InputError(f"clock '{text}' is not a real UTC offset — fix: {fix}")
        delta = timedelta(hours=hh, minutes=mm) * (-1 if sign == "-" else 1)
        return Clock(f"{sign}{hh:02d}:{mm:02d}", timezone(delta))
    try:
        return Clock(raw, ZoneInfo(raw))
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"clock '{text}' is not a known time zone or offset — fix: {fix}"
        ) from None


@dataclass(frozen=True, slots=True)
class LocalizedHours:
    """Result of :func:`localize_hours`: one UTC instant per input row (None = dropped)."""

    utc: list[datetime | None]
    notes: list[str] = field(default_factory=list)


def _fmt_local(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _exists(local: datetime, tz: tzinfo) -> bool:
    """False for wall times skipped by a spring-forward transition."""
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def _ambiguous(local: datetime, tz: tzinfo) -> bool:
    """True for wall times repeated by a fall-back transition (both folds differ)."""
    return (
        local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset()
    )


def _to_utc(local: datetime, tz: tzinfo, fold: int) -> datetime:
    return local.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def localize_hours(
    local: Sequence[datetime],
    clock: Clock,
    values: Sequence[float] | None = None,
    *,
    source: str | Path = "local times",
    column: str = "Datetime",
) -> LocalizedHours:
    """Convert naive local hour-beginning stamps to aware UTC datetimes.

    ``values`` (same length, optional) are only used to say in the notes whether a dropped
    non-existent hour merely copied a neighbour. Input order is kept in the result; rows are
    examined in stable sorted order so that a repeated fall-back hour's first occurrence in
    the file is the summer-time one. Raises :class:`~gridbridge.errors.DataImportError`
    naming ``source`` and the 1-based row for an illegal repeat or a stamp whose UTC
    instant is off the hour grid or out of range.
    """
    tz = clock.tz
    order = sorted(range(len(local)), key=lambda i: local[i])
    by_stamp = {stamp: i for i, stamp in enumerate(local)}
    utc: list[datetime | None] = [None] * len(local)
    notes: list[str] = []
    k = 0
    while k < len(order):
        i = order[k]
        stamp = local[i]
        # Group identical stamps: a run of length 2 is only legal on a fall-back hour.
        run = [i]
        while k + len(run) < len(order) and local[order[k + len(run)]] == stamp:
            run.append(order[k + len(run)])
        k += len(run)
        try:
            if not _exists(stamp, tz):
                if len(run) > 1:
                    raise _repeat_error(source, column, stamp, run, clock)
                notes.append(_gap_note(stamp, i, clock, local, values, by_stamp))
                continue
            ambiguous = _ambiguous(stamp, tz)
            if len(run) > 2 or (len(run) == 2 and not ambiguous):
                raise _repeat_error(source, column, stamp, run, clock)
            for fold, row in enumerate(run):
                utc[row] = _to_utc(stamp, tz, fold)
        except OverflowError:
            raise import_error(
                source,
                f"'{stamp}' is out of range on clock {clock.name}",
                "check the date",
                row=i + 1,
                column=column,
            ) from None
        if ambiguous:
            notes.append(_fold_note(stamp, run, clock))
        instant = utc[i]
        if instant is not None and (instant.minute or instant.second or instant.microsecond):
            raise import_error(
                source,
                f"local hour {_fmt_local(stamp)} on clock {clock.name} is {format_hour(instant)}"
                " off the UTC hour grid",
                "use a clock whose UTC offset is a whole number of hours",
                row=i + 1,
                column=column,
            )
    return LocalizedHours(utc, notes)


def _repeat_error(
    source: str | Path, column: str, stamp: datetime, run: list[int], clock: Clock
) -> Exception:
    rows = ", ".join(str(r + 1) for r in run)
    if len(run) == 2:
        why = f"it is not an hour that clock {clock.name} repeats when daylight saving ends"
    else:
        why = "no hour occurs more than twice, even when daylight saving ends"
    return import_error(
        source,
        f"local time {_fmt_local(stamp)} appears {len(run)} times (rows {rows}); {why}",
        "remove the duplicate rows, or check the clock (--clock)",
        row=run[-1] + 1,
        column=column,
    )


def _gap_note(
    stamp: datetime,
    row: int,
    clock: Clock,
    local: Sequence[datetime],
    values: Sequence[float] | None,
    by_stamp: dict[datetime, int],
) -> str:
    note = (
        f"{clock.name}: local {_fmt_local(stamp)} does not exist (clocks spring forward); "
        f"row {row + 1} dropped"
    )
    if values is None:
        return note + "."
    value = values[row]
    copied = [
        _fmt_local(stamp + step)[-5:]
        for step in (-_ONE_HOUR, _ONE_HOUR)
        if (j := by_stamp.get(stamp + step)) is not None and values[j] == value
    ]
    if copied:
        return note + f"; its value {value:g} duplicated the {' and '.join(copied)} hour's."
    return note + f"; its value {value:g} matched neither neighbouring hour."


def _fold_note(stamp: datetime, run: list[int], clock: Clock) -> str:
    early = format_hour(_to_utc(stamp, clock.tz, 0))
    late = format_hour(_to_utc(stamp, clock.tz, 1))
    head = f"{clock.name}: local {_fmt_local(stamp)} is ambiguous (clocks fall back)"
    if len(run) == 2:
        return (
            f"{head}; it occurs twice (rows {run[0] + 1}, {run[1] + 1}): the first maps to "
            f"{early} (summer time), the second to {late} (standard time)."
        )
    return (
        f"{head}; it occurs once (row {run[0] + 1}) and maps to the earlier, summer-time "
        f"instant {early}; {late} is left missing."
    )

"""UTC hour arithmetic for the agent: the report's hours and averaging sub-hourly points.

Every hour is an aware UTC ``datetime`` on a whole hour, hour-beginning, as in DESIGN.md:
the hour ``14:00Z`` covers ``[14:00, 15:00)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

__all__ = ["ONE_HOUR", "Clock", "hour_ceil", "hour_floor", "hourly_means", "next_hours",
           "parse_utc", "prefix_length", "replay_clock", "system_clock"]

ONE_HOUR = timedelta(hours=1)

#: Something that says what time it is (aware, UTC). Injected so tests control time.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's clock, UTC."""
    return datetime.now(UTC)


def hour_floor(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in: 14:25Z -> 14:00Z."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    """The first whole UTC hour at or after ``moment``: 14:25Z -> 15:00Z, 14:00Z -> 14:00Z."""
    floor = hour_floor(moment)
    return floor if floor == moment.astimezone(UTC) else floor + ONE_HOUR


def next_hours(moment: datetime, count: int) -> list[datetime]:
    """The ``count`` whole hours starting at the first hour that has not begun yet.

    A report never carries an hour that has already started: the exchange places jobs in
    whole future hours, and a stamp in the past could be refused.
    """
    first = hour_ceil(moment)
    return [first + i * ONE_HOUR for i in range(count)]


def hourly_means(points: Iterable[tuple[datetime, float]]) -> dict[datetime, float]:
    """Mean value per UTC hour of time-stamped points (each point counts for the hour its
    stamp falls in); non-finite values are ignored.

    Used for sources finer than an hour (half-hourly UK data, 5-minute WattTime points):
    they are period averages, so the hour's value is the mean of its periods.
    """
    sums: dict[datetime, list[float]] = defaultdict(list)
    for stamp, value in points:
        if math.isfinite(value):
            sums[hour_floor(stamp)].append(value)
    return {hour: sum(values) / len(values) for hour, values in sums.items()}


def prefix_length(hours: Sequence[datetime], covered: Iterable[datetime]) -> int:
    """How many of ``hours``, from the first, are in ``covered`` without a gap."""
    have = set(covered)
    count = 0
    for hour in hours:
        if hour not in have:
            break
        count += 1
    return count


def parse_utc(text: str, what: str) -> datetime:
    """An ISO 8601 stamp with an offset, as UTC; ``Z`` accepted. Raises ``ValueError``."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{what} '{text}' has no time zone")
    return value.astimezone(UTC)


def replay_clock(start: datetime, monotonic: Callable[[], float]) -> Clock:
    """A clock that reads ``start`` now and then advances with real time (a demo replaying
    2023 runs its agents on such a clock)."""
    origin = monotonic()
    start = start.astimezone(UTC)

    def now() -> datetime:
        return start + timedelta(seconds=monotonic() - origin)

    return now

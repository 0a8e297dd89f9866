"""The exchange's clock, injected (tests and replays pass their own), and how instants are
written in its tables and answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "instant_text", "system_clock"]

#: Returns the current time as an aware datetime (any zone; stored in UTC).
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def instant_text(value: datetime) -> str:
    """``2023-07-03T14:05:07.123Z``: an instant in UTC, to the millisecond.

    Raises :class:`ValueError` for a naive datetime: a clock must say its zone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"clock returned a naive datetime {value!r}; return an aware one")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

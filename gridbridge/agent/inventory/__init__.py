"""Inventory sources: how many GPUs of each type a site can offer, hour by hour.

Every source implements :class:`InventorySource`. ``free_gpus(hours)`` answers an
:class:`InventoryReading` with a count per GPU type for each asked hour (types the source
knows of but has none free appear with 0), plus notes to log (an unknown GPU name, a node
that is down). A source that cannot answer at all raises
:class:`~gridbridge.agent.errors.InventoryUnavailable`.

Sources that see the cluster now (NVML, Slurm) report the present state for every hour of
the horizon: a snapshot is their best forecast. The static file can say more per hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["GpuCounts", "InventoryReading", "InventorySource", "capped", "same_every_hour"]

#: Free whole GPUs by GPU type (the exchange's type names: ``H100``, ``A100``, ...).
GpuCounts = dict[str, int]


@dataclass(frozen=True, slots=True)
class InventoryReading:
    """What a source said: free GPUs by type for each asked hour, and notes to log."""

    source: str
    free: dict[datetime, GpuCounts]
    notes: tuple[str, ...] = field(default=())


class InventorySource(Protocol):
    """Anything that says how many GPUs are free per type and hour."""

    name: str

    def free_gpus(self, hours: Sequence[datetime]) -> InventoryReading:
        """Free GPUs by type for each of ``hours``; raise ``InventoryUnavailable`` if unknown."""
        ...


def same_every_hour(source: str, counts: Mapping[str, int], hours: Sequence[datetime],
                    notes: Sequence[str] = ()) -> InventoryReading:
    """A reading that repeats one snapshot for every hour."""
    return InventoryReading(source, {hour: dict(counts) for hour in hours}, tuple(notes))


def capped(reading: InventoryReading, cap: Mapping[str, int]) -> InventoryReading:
    """The reading with each listed type limited to the site's pooled share ``cap[type]``.

    Sites pool a share of their cluster; the cap keeps the rest for local users whatever
    the source sees free. Types not in ``cap`` are unchanged.
    """
    if not cap:
        return reading
    free = {hour: {t: min(n, cap[t]) if t in cap else n for t, n in counts.items()}
            for hour, counts in reading.free.items()}
    return InventoryReading(reading.source, free, reading.notes)

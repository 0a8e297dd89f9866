"""A static inventory: free GPUs per type written by the operator, optionally per hour.

Inline in ``site.toml`` (``[inventory] source = "static"``, ``gpus = { H100 = 64 }``) or in
a file named by ``path``, read again on every cycle so an edit takes effect without a
restart. Two file forms:

TOML::

    [gpus]                      # every hour
    H100 = 64
    A100 = 32

    [[hours]]                   # overrides for one hour (types not named keep the default)
    hour_utc = "2023-07-03T14:00Z"
    gpus = { H100 = 16 }

CSV (header ``gpu_type,gpus_free[,hour_utc]``; an empty ``hour_utc`` means every hour)::

    gpu_type,gpus_free,hour_utc
    H100,64,
    H100,16,2023-07-03T14:00Z

Inline ``gpus`` and a file combine: the file's values win for the types it names.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from gridbridge.agent.errors import InventoryUnavailable
from gridbridge.agent.inventory import GpuCounts, InventoryReading
from gridbridge.hours import HourParseError, parse_hour
from gridbridge.tomltext import parse_toml

__all__ = ["GPU_TYPE_PATTERN", "StaticInventory", "read_static_file"]

#: GPU type names the exchange's contract accepts.
GPU_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InventoryUnavailable(
            f"{where}: {value!r} is not a whole number of GPUs >= 0 — fix: write e.g. 64")
    return value


def _gpu_type(name: str, where: str) -> str:
    if not GPU_TYPE_PATTERN.match(name):
        raise InventoryUnavailable(
            f"{where}: '{name}' is not a GPU type name — fix: use the exchange's names "
            "(letters, digits, . _ -), e.g. H100")
    return name


def _hour(text: object, where: str) -> datetime:
    try:
        return parse_hour(str(text))
    except HourParseError as exc:
        raise InventoryUnavailable(f"{where}: {exc} — fix: {exc.fix}") from None


def _read_toml(path: Path) -> tuple[GpuCounts, dict[datetime, GpuCounts]]:
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InventoryUnavailable(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"gpus", "hours"}
    if unknown:
        raise InventoryUnavailable(f"{path}: unknown key(s) {sorted(unknown)} — fix: use "
                                   "[gpus] and [[hours]] only")
    default = {_gpu_type(t, f"{path} [gpus]"): _count(n, f"{path} [gpus] {t}")
               for t, n in dict(data.get("gpus", {})).items()}
    hourly: dict[datetime, GpuCounts] = {}
    for i, entry in enumerate(data.get("hours", []), start=1):
        where = f"{path} [[hours]] #{i}"
        if not isinstance(entry, dict) or set(entry) != {"hour_utc", "gpus"}:
            raise InventoryUnavailable(f"{where}: needs exactly hour_utc and gpus — fix: "
                                       'write hour_utc = "2023-07-03T14:00Z", gpus = {H100 = 8}')
        hour = _hour(entry["hour_utc"], where)
        hourly.setdefault(hour, {}).update(
            {_gpu_type(t, where): _count(n, f"{where} {t}") for t, n in entry["gpus"].items()})
    return default, hourly


def _read_csv(path: Path) -> tuple[GpuCounts, dict[datetime, GpuCounts]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        header = set(rows[0]) if rows else set()
    if not {"gpu_type", "gpus_free"} <= header:
        raise InventoryUnavailable(f"{path}: the header must name gpu_type and gpus_free "
                                   "(and optionally hour_utc) — fix: gpu_type,gpus_free,hour_utc")
    default: GpuCounts = {}
    hourly: dict[datetime, GpuCounts] = {}
    for row_no, row in enumerate(rows, start=1):
        where = f"{path}, row {row_no}"
        gpu_type = _gpu_type((row["gpu_type"] or "").strip(), where)
        text = (row["gpus_free"] or "").strip()
        if not text.isdigit():
            raise InventoryUnavailable(f"{where}, field 'gpus_free': '{text}' is not a whole "
                                       "number >= 0 — fix: write e.g. 64")
        stamp = (row.get("hour_utc") or "").strip()
        target = hourly.setdefault(_hour(stamp, where), {}) if stamp else default
        target[gpu_type] = int(text)
    return default, hourly


def read_static_file(path: Path) -> tuple[GpuCounts, dict[datetime, GpuCounts]]:
    """``(every-hour counts, per-hour overrides)`` from a TOML or CSV inventory file."""
    if not path.is_file():
        raise InventoryUnavailable(f"{path}: no such inventory file — fix: create it or "
                                   "correct [inventory] path in site.toml")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    return _read_toml(path)


class StaticInventory:
    """Free GPUs as written by the operator (inline ``gpus`` and/or a file)."""

    name = "static"

    def __init__(self, gpus: Mapping[str, int] | None = None, path: Path | None = None) -> None:
        self.gpus: GpuCounts = dict(gpus or {})
        self.path = path

    def free_gpus(self, hours: Sequence[datetime]) -> InventoryReading:
        """The default counts for every hour, with the file's per-hour overrides applied."""
        default, hourly = dict(self.gpus), {}
        if self.path is not None:
            from_file, hourly = read_static_file(self.path)
            default.update(from_file)
        free: dict[datetime, GpuCounts] = {}
        for hour in hours:
            counts = dict(default)
            counts.update(hourly.get(hour, {}))
            free[hour] = counts
        return InventoryReading(self.name, free)

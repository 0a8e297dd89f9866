"""The exchange's counters, served at ``GET /metrics`` in the Prometheus text format (0.0.4).

Counters are kept per process, from its start (Prometheus handles restarts: ``rate()`` and
``increase()`` treat a drop to 0 as a reset). With several exchange processes on one
database, sum them across instances; the database, not these counters, is the record.

* ``gridbridge_telemetry_reports_total`` — telemetry reports stored (first deliveries);
* ``gridbridge_telemetry_duplicates_total`` — re-delivered reports acknowledged, not stored;
* ``gridbridge_metering_reports_total`` — metering reports stored (and trued up);
* ``gridbridge_metering_duplicates_total`` — re-delivered metering reports acknowledged;
* ``gridbridge_rounds_total`` — rounds opened;
* ``gridbridge_solve_seconds_total`` — seconds spent clearing rounds (0 until rounds clear);
* ``gridbridge_http_requests_total{status="..."}`` — answers by HTTP status.
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = {
    "gridbridge_telemetry_reports_total": "Telemetry reports stored by this process.",
    "gridbridge_telemetry_duplicates_total":
        "Re-delivered telemetry reports acknowledged as duplicates by this process.",
    "gridbridge_metering_reports_total":
        "Metering reports stored (and trued up into the ledger) by this process.",
    "gridbridge_metering_duplicates_total":
        "Re-delivered metering reports acknowledged as duplicates by this process.",
    "gridbridge_rounds_total": "Market rounds opened by this process.",
    "gridbridge_solve_seconds_total": "Seconds this process spent clearing rounds.",
}


class Metrics:
    """Thread-safe counters of one exchange process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = dict.fromkeys(_HELP, 0.0)
        self._http: Counter[int] = Counter()

    def add(self, name: str, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0) to counter ``name`` (one of the module doc's)."""
        if name not in _HELP:
            raise KeyError(f"unknown counter {name}")
        with self._lock:
            self._values[name] += amount

    def http(self, status: int) -> None:
        """Count one answer with HTTP ``status``."""
        with self._lock:
            self._http[status] += 1

    def render(self) -> str:
        """Every counter in the Prometheus text format."""
        with self._lock:
            values, http = dict(self._values), dict(self._http)
        lines = []
        for name, text in _HELP.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter",
                      f"{name} {values[name]!r}"]
        name = "gridbridge_http_requests_total"
        lines += [f"# HELP {name} HTTP answers of this process by status.",
                  f"# TYPE {name} counter"]
        lines += [f'{name}{{status="{code}"}} {count}' for code, count in sorted(http.items())]
        return "\n".join(lines) + "\n"

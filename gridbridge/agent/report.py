"""Building a telemetry report from one cycle's readings, with the exchange's own models.

The report covers the asked hours that every source answered, from the first one without a
gap (a provider's forecast may end before the horizon does). ``report_id`` is generated once
per report — ``{site_id}-{measured_at}-{12 hex digits of a UUID4}`` — and stays with it
through the spool, so a resend after a crash or a lost answer is recognised by the exchange
as the same report.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from gridbridge.agent.forecasts import ChainAnswer
from gridbridge.agent.inventory import InventoryReading
from gridbridge.agent.signals import REPORTABLE_SIGNALS
from gridbridge.exchange.contract import TelemetryHour, TelemetryReport

__all__ = ["build_report", "new_report_id"]


def new_report_id(site_id: str, measured_at: datetime) -> str:
    """A fresh, unique id: ``GB-BRISTOL-1-20230703T140512Z-3f2a9c01b4de``."""
    stamp = measured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{site_id}-{stamp}-{uuid.uuid4().hex[:12]}"


def build_report(*, site_id: str, zone: str, measured_at: datetime,
                 hours: Sequence[datetime], inventory: InventoryReading,
                 carbon: ChainAnswer, price: ChainAnswer,
                 report_id: str | None = None) -> TelemetryReport:
    """The report for the leading hours that inventory, carbon and price all cover.

    Raises ``pydantic.ValidationError`` if a value breaks the contract (a programming error:
    providers only hand over finite, non-negative intensities).
    """
    covered = min(carbon.covered, price.covered, len(hours))
    rows = []
    for hour in hours[:covered]:
        if hour not in inventory.free:
            break
        rows.append(TelemetryHour(
            hour_utc=hour, gpus_free=inventory.free[hour],
            carbon_g_per_kwh=carbon.forecast.values[hour],
            price_eur_per_mwh=price.forecast.values[hour]))
    signal = carbon.forecast.signal
    assert signal in REPORTABLE_SIGNALS, signal  # refused when the config was loaded
    return TelemetryReport(
        report_id=report_id or new_report_id(site_id, measured_at), zone=zone,
        signal=signal,  # type: ignore[arg-type]
        provider=carbon.forecast.provider, measured_at_utc=measured_at, hours=rows)

"""Electricity Maps API v3: ``/v3/carbon-intensity/forecast`` and ``/latest``.

Requests carry the key in the ``auth-token`` header and ``emissionFactorType`` set to the
site's signal: Electricity Maps answers **lifecycle** intensity unless asked for ``direct``
(its docs: "The supported parameters are direct and lifecycle. The default parameter is
lifecycle"), so the agent always asks explicitly and, when the answer states its
``emissionFactorType``, refuses one that differs. Values are gCO2eq/kWh, location-based
averages of the consumption mix, hourly by default.

``/forecast`` answers ``{"zone", "forecast": [{"carbonIntensity", "datetime"}, ...],
"updatedAt"}``; finer granularities (``5_minutes``/``15_minutes``) are averaged into hours.
``mode = "latest"`` is for keys without forecast access (the free personal tier): it reads
``/latest`` (``{"zone", "carbonIntensity", "datetime", "emissionFactorType", ...}``) and
holds that value for every hour — a persistence forecast, named as such in the report's
provider (``electricitymaps-latest``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.forecasts import Forecast
from gridbridge.agent.hourly import hourly_means, parse_utc
from gridbridge.agent.retry import Http
from gridbridge.agent.signals import AgentSignal

__all__ = ["DEFAULT_URL", "ElectricityMaps"]

DEFAULT_URL = "https://api.electricitymaps.com"


class ElectricityMaps:
    """Electricity Maps carbon intensity for one zone, ``direct`` or ``lifecycle``."""

    def __init__(self, http: Http, *, token: str, zone: str,
                 signal: Literal["direct", "lifecycle"], base_url: str = DEFAULT_URL,
                 mode: Literal["forecast", "latest"] = "forecast",
                 horizon_hours: int | None = None) -> None:
        self.http = http
        self.token = token
        self.zone = zone
        self.signal: AgentSignal = signal
        self.base_url = base_url.rstrip("/")
        self.mode = mode
        self.horizon_hours = horizon_hours
        self.name = "electricitymaps" if mode == "forecast" else "electricitymaps-latest"

    def _get(self, endpoint: str) -> dict[str, Any]:
        params: dict[str, str | int] = {"zone": self.zone, "emissionFactorType": self.signal}
        if endpoint == "forecast" and self.horizon_hours is not None:
            params["horizonHours"] = self.horizon_hours
        body = self.http.get_json(f"{self.base_url}/v3/carbon-intensity/{endpoint}",
                                  provider=self.name, params=params,
                                  headers={"auth-token": self.token})
        if not isinstance(body, dict):
            raise ProviderError(f"{self.name}: /{endpoint} answered {type(body).__name__}, "
                                "not an object")
        stated = body.get("emissionFactorType")
        if stated is not None and stated != self.signal:
            raise ProviderError(f"{self.name}: asked for emissionFactorType={self.signal} but "
                                f"the answer is '{stated}'; not used")
        if body.get("zone") not in (None, self.zone):
            raise ProviderError(f"{self.name}: asked for zone {self.zone} but the answer is "
                                f"for {body.get('zone')}; not used")
        return body

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """Hourly gCO2eq/kWh for ``hours`` (those the forecast reaches)."""
        if self.mode == "latest":
            return self._persisted(hours)
        body = self._get("forecast")
        entries = body.get("forecast")
        if not isinstance(entries, list):
            raise ProviderError(f"{self.name}: the answer has no 'forecast' list")
        points, notes = [], []
        for entry in entries:
            value = entry.get("carbonIntensity") if isinstance(entry, dict) else None
            try:
                stamp = parse_utc(str(entry["datetime"]), "datetime")
            except (KeyError, TypeError, ValueError):
                notes.append(f"{self.name}: skipped an entry without a valid datetime")
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                notes.append(f"{self.name}: no usable carbonIntensity at {stamp:%Y-%m-%dT%H:%MZ}")
                continue
            points.append((stamp, float(value)))
        wanted = set(hours)
        values = {h: v for h, v in hourly_means(points).items() if h in wanted}
        return Forecast(self.name, values, self.signal, tuple(notes))

    def _persisted(self, hours: Sequence[datetime]) -> Forecast:
        body = self._get("latest")
        value = body.get("carbonIntensity")
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ProviderError(f"{self.name}: /latest has no usable carbonIntensity ({value!r})")
        note = (f"{self.name}: latest value {value:g} g/kWh at {body.get('datetime')} held "
                "for every hour (persistence forecast)")
        return Forecast(self.name, {h: float(value) for h in hours}, self.signal, (note,))

"""The UK Carbon Intensity API (api.carbonintensity.org.uk, NESO), 48-hour forecast.

National: ``GET /intensity/{from}/fw48h`` answers ``{"data": [{"from": "2023-07-03T14:00Z",
"to": "2023-07-03T14:30Z", "intensity": {"forecast": 186, "actual": null, "index":
"moderate"}}, ...]}``. Regional (``region_id`` 1-17, e.g. 13 London):
``GET /regional/intensity/{from}/fw48h/regionid/{id}`` answers ``{"data": {"regionid": 13,
"dnoregion": "UKPN London", "shortname": "London", "data": [{"from", "to", "intensity":
{"forecast", "index"}, "generationmix": [...]}]}}`` (some deployments wrap that object in a
one-element list; both are read). No key is needed.

Its signal is **direct**: the API counts the operational (combustion) emissions of
generation, not life-cycle emissions. Values are gCO2eq/kWh per half-hour settlement period
(a period's average), so an hour is the mean of its two periods; an hour with only one of
them (the edge of the 48 hours) takes that one. The forecast value is used (``actual`` is
null for periods that have not happened). Only zone GB is served.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.forecasts import Forecast
from gridbridge.agent.hourly import hourly_means, parse_utc
from gridbridge.agent.retry import Http
from gridbridge.agent.signals import AgentSignal

__all__ = ["DEFAULT_URL", "UkCarbonIntensity"]

DEFAULT_URL = "https://api.carbonintensity.org.uk"
HALF_HOUR = timedelta(minutes=30)


def _periods(body: Any) -> list[Any]:
    """The list of half-hour periods in a national or regional answer."""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict) \
            and "regionid" in data[0]:
        data = data[0]
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list):
        raise ProviderError("carbonintensity.org.uk: the answer has no 'data' list of periods")
    return data


class UkCarbonIntensity:
    """GB's direct carbon intensity, national or for one DNO region."""

    signal: AgentSignal = "direct"

    def __init__(self, http: Http, *, region_id: int | None = None,
                 base_url: str = DEFAULT_URL) -> None:
        self.http = http
        self.region_id = region_id
        self.base_url = base_url.rstrip("/")
        self.name = "carbonintensity.org.uk" + (f" region {region_id}" if region_id else "")

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """Hourly gCO2eq/kWh for ``hours`` within the API's 48 hours."""
        if not hours:
            return Forecast(self.name, {}, self.signal)
        # Asked from half an hour early: the API's first period is the one *ending* after
        # {from} on some days and the one starting at it on others; either way the first
        # hour's two periods are then inside the answer. The extra period is dropped below.
        start = (hours[0] - HALF_HOUR).strftime("%Y-%m-%dT%H:%MZ")
        path = f"/intensity/{start}/fw48h"
        if self.region_id is not None:
            path = f"/regional/intensity/{start}/fw48h/regionid/{self.region_id}"
        body = self.http.get_json(self.base_url + path, provider=self.name,
                                  headers={"Accept": "application/json"})
        points, notes = [], []
        for period in _periods(body):
            try:
                stamp = parse_utc(str(period["from"]), "from")
                value = period["intensity"]["forecast"]
            except (KeyError, TypeError, ValueError):
                notes.append(f"{self.name}: skipped a period without from/intensity.forecast")
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                notes.append(f"{self.name}: no usable forecast for {period.get('from')}")
                continue
            points.append((stamp, float(value)))
        wanted = set(hours)
        values = {h: v for h, v in hourly_means(points).items() if h in wanted}
        return Forecast(self.name, values, self.signal, tuple(notes))

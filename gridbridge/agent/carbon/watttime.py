"""WattTime API v3: log in for a token, then ``/v3/forecast`` of the marginal emissions rate.

``GET https://api.watttime.org/login`` with HTTP basic auth answers ``{"token": "..."}``, a
bearer token valid for 30 minutes (refreshed here after 25, and once more whenever a data
call answers 401). ``GET /v3/forecast?region=...&signal_type=co2_moer&horizon_hours=...``
answers::

    {"data": [{"point_time": "2023-07-03T14:00:00+00:00", "value": 1048.4}, ...],
     "meta": {"region": "CAISO_NORTH", "signal_type": "co2_moer", "units": "lbs_co2_per_mwh",
              "data_point_period_seconds": 300, "generated_at": "...", "model": {...},
              "generated_at_period_seconds": 300, "warnings": [...]}}

The signal is **marginal** (MOER: the emissions rate of the generators that answer a change
in load), in pounds of CO2 per MWh. One lb/MWh = 453.59237 g / 1000 kWh = 0.45359237 g/kWh.
The 5-minute points are averaged into UTC hours. A marginal series may only be combined
with other marginal providers, never with the location-based averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.forecasts import Forecast
from gridbridge.agent.hourly import Clock, hourly_means, parse_utc, system_clock
from gridbridge.agent.retry import Http, RetriesExhausted
from gridbridge.agent.signals import AgentSignal

__all__ = ["DEFAULT_URL", "G_PER_KWH_PER_LB_PER_MWH", "UNITS", "WattTime"]

DEFAULT_URL = "https://api.watttime.org"
#: 1 lb = 453.59237 g (exact, by definition); per MWh -> per kWh divides by 1000.
G_PER_KWH_PER_LB_PER_MWH = 0.45359237
#: Units WattTime states in ``meta.units`` -> factor to gCO2/kWh.
UNITS = {"lbs_co2_per_mwh": G_PER_KWH_PER_LB_PER_MWH}
TOKEN_LIFETIME = timedelta(minutes=25)  # WattTime's tokens last 30; renew before they lapse


class WattTime:
    """WattTime's marginal CO2 forecast for one WattTime region."""

    signal: AgentSignal = "marginal"
    name = "watttime"

    def __init__(self, http: Http, *, username: str, password: str, region: str,
                 base_url: str = DEFAULT_URL, clock: Clock = system_clock) -> None:
        self.http = http
        self.username, self.password = username, password
        self.region = region
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self._token: str | None = None
        self._token_at: datetime | None = None

    def _login(self) -> str:
        try:
            response = self.http.request("GET", f"{self.base_url}/login",
                                         auth=httpx.BasicAuth(self.username, self.password))
        except RetriesExhausted as exc:
            raise ProviderError(f"{self.name}: login is unavailable: {exc}") from None
        if response.status_code in (401, 403):
            raise ProviderError(f"{self.name}: login refused (HTTP {response.status_code}) — "
                                "fix: check the WattTime username and password in site.toml")
        token = None
        if response.status_code == 200:
            try:
                token = response.json().get("token")
            except (ValueError, AttributeError):
                token = None
        if not isinstance(token, str) or not token:
            raise ProviderError(f"{self.name}: login answered HTTP {response.status_code} "
                                "without a token")
        self._token, self._token_at = token, self.clock()
        return token

    def _token_now(self) -> str:
        if self._token is None or self._token_at is None \
                or self.clock() - self._token_at >= TOKEN_LIFETIME:
            return self._login()
        return self._token

    def _forecast_body(self, horizon_hours: int) -> Any:
        url = f"{self.base_url}/v3/forecast"
        params = {"region": self.region, "signal_type": "co2_moer",
                  "horizon_hours": horizon_hours}
        for fresh in (False, True):
            token = self._login() if fresh else self._token_now()
            try:
                response = self.http.request("GET", url, params=params,
                                             headers={"Authorization": f"Bearer {token}"})
            except RetriesExhausted as exc:
                raise ProviderError(f"{self.name}: {url} is unavailable: {exc}") from None
            if response.status_code == 401 and not fresh:
                continue  # the token lapsed early: log in again, once
            if response.status_code != 200:
                raise ProviderError(f"{self.name}: {url} answered HTTP {response.status_code}: "
                                    f"{response.text[:300].strip()}")
            try:
                return response.json()
            except ValueError as exc:
                raise ProviderError(f"{self.name}: {url} did not answer JSON ({exc})") from None
        raise ProviderError(f"{self.name}: {url} refused a fresh token (HTTP 401)")

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """Hourly marginal gCO2/kWh for ``hours`` within WattTime's horizon (up to 72 h)."""
        if not hours:
            return Forecast(self.name, {}, self.signal)
        # WattTime's forecast starts now; ask far enough to reach the last hour's end.
        span = (hours[-1] + timedelta(hours=1) - self.clock()).total_seconds() / 3600
        body = self._forecast_body(max(1, min(72, math.ceil(span))))
        meta = body.get("meta", {}) if isinstance(body, dict) else {}
        units = meta.get("units")
        if units not in UNITS:
            raise ProviderError(f"{self.name}: unknown units {units!r} in the forecast; expected "
                                "lbs_co2_per_mwh")
        if meta.get("signal_type", "co2_moer") != "co2_moer":
            raise ProviderError(f"{self.name}: asked for co2_moer, got {meta.get('signal_type')}")
        factor = UNITS[units]
        points, notes = [], [f"{self.name}: {w.get('type')}: {w.get('message')}"
                             for w in meta.get("warnings") or [] if isinstance(w, dict)]
        for point in body.get("data") or []:
            try:
                stamp = parse_utc(str(point["point_time"]), "point_time")
                value = float(point["value"])
            except (KeyError, TypeError, ValueError):
                notes.append(f"{self.name}: skipped a point without point_time/value")
                continue
            if math.isfinite(value) and value >= 0:
                points.append((stamp, value * factor))
        wanted = set(hours)
        values = {h: v for h, v in hourly_means(points).items() if h in wanted}
        return Forecast(self.name, values, self.signal, tuple(notes))

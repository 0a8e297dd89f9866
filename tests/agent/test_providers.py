"""Carbon providers against recorded payloads in each API's real format (httpx.MockTransport).

The recorded files in tests/agent/data follow the documented response shapes: Electricity
Maps v3 ``/forecast`` and ``/latest``, the UK Carbon Intensity API's national and regional
``fw48h``, WattTime v3 ``/login`` and ``/v3/forecast``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gridbridge.agent.carbon.electricitymaps import ElectricityMaps
from gridbridge.agent.carbon.ukcarbon import UkCarbonIntensity
from gridbridge.agent.carbon.watttime import G_PER_KWH_PER_LB_PER_MWH, WattTime
from gridbridge.agent.errors import ProviderError
from gridbridge.agent.hourly import next_hours
from gridbridge.agent.retry import Http, RetryPolicy
from tests.agent.conftest import recorded

NOW = datetime(2024, 3, 12, 9, 47, tzinfo=UTC)
HOURS = next_hours(NOW, 48)  # 2024-03-12T10:00Z .. 2024-03-14T09:00Z


def http_for(handler: Callable[[httpx.Request], httpx.Response]) -> Http:
    return Http(httpx.Client(transport=httpx.MockTransport(handler)),
                RetryPolicy(attempts=2, base_s=0.0), sleep=lambda s: None)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------- Electricity Maps


def em_handler(seen: list[httpx.Request], payloads: dict[str, object]
               ) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("auth-token") != "em-key":
            return httpx.Response(401, json={"status": "error", "message": "Unauthorized"})
        key = request.url.path.rsplit("/", 1)[-1] + ":" + request.url.params["emissionFactorType"]
        return httpx.Response(200, json=payloads[key])
    return handle


@pytest.mark.parametrize("signal", ["lifecycle", "direct"])
def test_electricitymaps_forecast_asks_for_and_checks_the_signal(signal: str) -> None:
    payload = recorded(f"em_forecast_DE_{signal}.json")
    seen: list[httpx.Request] = []
    provider = ElectricityMaps(http_for(em_handler(seen, {f"forecast:{signal}": payload})),
                               token="em-key", zone="DE", signal=signal)  # type: ignore[arg-type]
    answer = provider.forecast(HOURS)
    assert seen[0].url.path == "/v3/carbon-intensity/forecast"
    assert seen[0].url.params["zone"] == "DE"
    assert seen[0].url.params["emissionFactorType"] == signal
    assert (answer.provider, answer.signal) == ("electricitymaps", signal)
    # The forecast starts at 09:00Z, an hour not asked for; it reaches 72 hours ahead.
    expected = {stamp(e["datetime"]): float(e["carbonIntensity"]) for e in payload["forecast"]}
    assert answer.values == {h: expected[h] for h in HOURS}


def test_electricitymaps_direct_and_lifecycle_differ_and_mismatch_is_refused() -> None:
    direct, lifecycle = recorded("em_forecast_DE_direct.json"), recorded(
        "em_forecast_DE_lifecycle.json")
    assert direct["forecast"][1]["carbonIntensity"] < lifecycle["forecast"][1]["carbonIntensity"]
    # An answer stating another emission factor type than asked is not used.
    provider = ElectricityMaps(http_for(em_handler([], {"forecast:direct": lifecycle})),
                               token="em-key", zone="DE", signal="direct")
    with pytest.raises(ProviderError, match="asked for emissionFactorType=direct but the "
                                            "answer is 'lifecycle'"):
        provider.forecast(HOURS)
    # An answer without the field (older API versions) is taken as asked.
    del lifecycle["emissionFactorType"]
    provider = ElectricityMaps(http_for(em_handler([], {"forecast:lifecycle": lifecycle})),
                               token="em-key", zone="DE", signal="lifecycle")
    assert len(provider.forecast(HOURS).values) == 48


def test_electricitymaps_latest_mode_is_a_named_persistence_forecast() -> None:
    seen: list[httpx.Request] = []
    provider = ElectricityMaps(
        http_for(em_handler(seen, {"latest:lifecycle": recorded("em_latest_DE_lifecycle.json")})),
        token="em-key", zone="DE", signal="lifecycle", mode="latest")
    answer = provider.forecast(HOURS[:6])
    assert seen[0].url.path == "/v3/carbon-intensity/latest"
    assert answer.provider == "electricitymaps-latest"
    assert set(answer.values.values()) == {398.0} and len(answer.values) == 6
    assert "persistence forecast" in answer.notes[0]


def test_electricitymaps_bad_key_and_sub_hourly_granularity() -> None:
    provider = ElectricityMaps(http_for(em_handler([], {})), token="wrong", zone="DE",
                               signal="lifecycle")
    with pytest.raises(ProviderError, match="answered HTTP 401"):
        provider.forecast(HOURS)
    quarter = {"zone": "DE", "emissionFactorType": "lifecycle", "forecast": [
        {"carbonIntensity": v, "datetime": f"2024-03-12T10:{m:02d}:00.000Z"}
        for v, m in ((400, 0), (410, 15), (420, 30), (430, 45))]}
    provider = ElectricityMaps(http_for(em_handler([], {"forecast:lifecycle": quarter})),
                               token="em-key", zone="DE", signal="lifecycle")
    assert provider.forecast(HOURS).values == {HOURS[0]: 415.0}


# ---------------------------------------------------------------- UK Carbon Intensity API


def test_uk_national_averages_the_two_half_hours_of_each_hour() -> None:
    payload = recorded("ukci_national_fw48h.json")
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=payload)

    answer = UkCarbonIntensity(http_for(handle)).forecast(HOURS)
    # Asked from half an hour before the first hour (see the provider's docstring).
    assert seen[0].url.path == "/intensity/2024-03-12T09:30Z/fw48h"
    assert (answer.provider, answer.signal) == ("carbonintensity.org.uk", "direct")
    half = {stamp(p["from"]): p["intensity"]["forecast"] for p in payload["data"]}
    for hour in HOURS[:-1]:
        assert answer.values[hour] == (half[hour] + half[hour + timedelta(minutes=30)]) / 2
    # The 48th hour has only its first half-hour inside the API's 48 hours.
    assert answer.values[HOURS[-1]] == half[HOURS[-1]]
    # 10:00 and 10:30 forecast 117 and 117; the period in progress (actual 111) is not used.
    assert answer.values[HOURS[0]] == 117.0


def test_uk_regional_answer_is_read() -> None:
    payload = recorded("ukci_regional13_fw48h.json")
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=payload)

    answer = UkCarbonIntensity(http_for(handle), region_id=13).forecast(HOURS)
    assert seen[0].url.path == "/regional/intensity/2024-03-12T09:30Z/fw48h/regionid/13"
    assert answer.provider == "carbonintensity.org.uk region 13"
    periods = payload["data"]["data"]
    assert answer.values[HOURS[0]] == (periods[1]["intensity"]["forecast"]
                                       + periods[2]["intensity"]["forecast"]) / 2
    assert len(answer.values) == 48
    # The same periods wrapped in a one-element list are read the same way.
    wrapped = {"data": [payload["data"]]}
    again = UkCarbonIntensity(http_for(lambda r: httpx.Response(200, json=wrapped)),
                              region_id=13).forecast(HOURS)
    assert again.values == answer.values


def test_uk_api_outage_is_a_provider_error_after_retries() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502, text="Bad Gateway")

    with pytest.raises(ProviderError, match=r"unavailable: HTTP 502 Bad Gateway \(after 2"):
        UkCarbonIntensity(http_for(handle)).forecast(HOURS)
    assert len(calls) == 2


# ---------------------------------------------------------------- WattTime


def watttime_handler(log: list[str], *, expire_first: bool = False
                     ) -> Callable[[httpx.Request], httpx.Response]:
    token = recorded("watttime_login.json")["token"]
    state = {"expired": expire_first}

    def handle(request: httpx.Request) -> httpx.Response:
        log.append(request.url.path)
        if request.url.path == "/login":
            basic = "Basic " + base64.b64encode(b"wt-user:wt-pass").decode()
            if request.headers.get("authorization") != basic:
                return httpx.Response(403, json={"error": "invalid credentials"})
            return httpx.Response(200, json={"token": token})
        if request.headers.get("authorization") != f"Bearer {token}" or state["expired"]:
            state["expired"] = False
            return httpx.Response(401, json={"error": "token expired"})
        assert request.url.params["signal_type"] == "co2_moer"
        assert request.url.params["region"] == "CAISO_NORTH"
        return httpx.Response(200, json=recorded("watttime_forecast_CAISO_NORTH.json"))

    return handle


def test_watttime_logs_in_and_converts_lbs_per_mwh_to_grams_per_kwh() -> None:
    log: list[str] = []
    provider = WattTime(http_for(watttime_handler(log)), username="wt-user",
                        password="wt-pass", region="CAISO_NORTH", clock=lambda: NOW)
    answer = provider.forecast(HOURS)
    assert log == ["/login", "/v3/forecast"]
    assert (answer.provider, answer.signal) == ("watttime", "marginal")
    points = recorded("watttime_forecast_CAISO_NORTH.json")["data"]
    ten = [p["value"] for p in points if p["point_time"].startswith("2024-03-12T10:")]
    assert len(ten) == 12  # twelve 5-minute points make the hour
    assert answer.values[HOURS[0]] == pytest.approx(sum(ten) / 12 * 0.45359237)
    assert pytest.approx(453.59237 / 1000) == G_PER_KWH_PER_LB_PER_MWH
    # 1000 lbs/MWh of marginal CO2 is about 454 g/kWh, not 1000.
    assert 300 < answer.values[HOURS[0]] < 700
    # A second forecast within the token's life does not log in again.
    provider.forecast(HOURS)
    assert log == ["/login", "/v3/forecast", "/v3/forecast"]


def test_watttime_logs_in_again_when_the_token_lapsed_and_refuses_bad_credentials() -> None:
    log: list[str] = []
    provider = WattTime(http_for(watttime_handler(log, expire_first=True)), username="wt-user",
                        password="wt-pass", region="CAISO_NORTH", clock=lambda: NOW)
    assert len(provider.forecast(HOURS).values) == 48
    assert log == ["/login", "/v3/forecast", "/login", "/v3/forecast"]
    bad = WattTime(http_for(watttime_handler([])), username="wt-user", password="nope",
                   region="CAISO_NORTH", clock=lambda: NOW)
    with pytest.raises(ProviderError, match=r"login refused \(HTTP 403\) — fix: check the "
                                            r"WattTime username"):
        bad.forecast(HOURS)


def test_watttime_unknown_units_are_refused() -> None:
    body = recorded("watttime_forecast_CAISO_NORTH.json")
    body["meta"]["units"] = "percentile"

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/login":
            return httpx.Response(200, json={"token": "t"})
        return httpx.Response(200, content=json.dumps(body))

    provider = WattTime(http_for(handle), username="u", password="p", region="CAISO_NORTH",
                        clock=lambda: NOW)
    with pytest.raises(ProviderError, match="unknown units 'percentile'"):
        provider.forecast(HOURS)

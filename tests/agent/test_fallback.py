"""Provider chains: configured order, fallback, minimum coverage, never mixing signals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gridbridge.agent.errors import AgentConfigError, ProviderError
from gridbridge.agent.forecasts import Forecast, ProviderChain
from gridbridge.agent.hourly import next_hours
from gridbridge.agent.signals import AgentSignal

HOURS = next_hours(datetime(2024, 3, 12, 9, 47, tzinfo=UTC), 48)


class Fake:
    """A provider that answers ``value`` for its first ``covers`` hours, or fails."""

    def __init__(self, name: str, signal: AgentSignal | None, value: float = 100.0,
                 covers: int = 48, fails: bool = False) -> None:
        self.name, self.signal, self.value = name, signal, value
        self.covers, self.fails = covers, fails
        self.calls = 0

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        self.calls += 1
        if self.fails:
            raise ProviderError(f"{self.name}: HTTP 503 from the API")
        return Forecast(self.name, {h: self.value for h in hours[:self.covers]}, self.signal)


def test_the_first_provider_that_answers_is_used_and_named() -> None:
    first = Fake("electricitymaps", "lifecycle", fails=True)
    second = Fake("replay:bridge-2023", "lifecycle", value=250.0)
    third = Fake("never-asked", "lifecycle")
    answer = ProviderChain("carbon", [first, second, third], min_hours=24,
                           signal="lifecycle").forecast(HOURS)
    assert answer.forecast.provider == "replay:bridge-2023"
    assert answer.covered == 48 and set(answer.forecast.values.values()) == {250.0}
    assert answer.failures == ("electricitymaps: HTTP 503 from the API",)
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)


def test_a_too_short_forecast_falls_back_and_a_long_enough_one_is_truncated() -> None:
    short = Fake("em-24h", "direct", covers=12)
    longer = Fake("uk-48h", "direct", covers=30)
    answer = ProviderChain("carbon", [short, longer], min_hours=24,
                           signal="direct").forecast(HOURS)
    assert answer.forecast.provider == "uk-48h" and answer.covered == 30
    assert "covers 12 of the 48 hours asked from the first; at least 24" in answer.failures[0]


def test_every_failure_is_listed_when_none_answers() -> None:
    chain = ProviderChain("price", [Fake("a", None, fails=True), Fake("b", None, covers=0)],
                          min_hours=1)
    with pytest.raises(ProviderError) as caught:
        chain.forecast(HOURS)
    assert str(caught.value) == ("no price provider answered:\n  - a: HTTP 503 from the API\n"
                                 "  - b: covers 0 of the 48 hours asked from the first; at "
                                 "least 1 are needed")


def test_a_chain_refuses_providers_of_another_signal() -> None:
    with pytest.raises(AgentConfigError, match=r"watttime \(marginal\), uk \(direct\) do not "
                                               r"give the site's signal 'lifecycle'"):
        ProviderChain("carbon", [Fake("em", "lifecycle"), Fake("watttime", "marginal"),
                                 Fake("uk", "direct")], min_hours=1, signal="lifecycle")
    with pytest.raises(AgentConfigError, match=r"no carbon provider is configured"):
        ProviderChain("carbon", [], min_hours=1, signal="direct")


def test_an_answer_in_another_signal_is_ignored_at_run_time() -> None:
    liar = Fake("liar", "direct")
    liar.forecast = lambda hours: Forecast("liar", {h: 1.0 for h in hours}, "lifecycle")
    chain = ProviderChain("carbon", [liar, Fake("ok", "direct", value=7.0)], min_hours=1,
                          signal="direct")
    answer = chain.forecast(HOURS)
    assert answer.forecast.provider == "ok" and "answered signal lifecycle" in answer.failures[0]

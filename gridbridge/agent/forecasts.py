"""Hourly forecasts from providers, and trying providers in order with fallback.

A carbon provider answers gCO2eq/kWh per UTC hour with its signal; a price provider answers
EUR/MWh per UTC hour (``signal`` is ``None``). A :class:`ProviderChain` asks its providers in
the configured order and takes the first answer that covers at least ``min_hours`` of the
asked hours from the first one without a gap; the report then covers that many hours. A
carbon chain only ever holds providers of one signal (checked when it is built), so falling
back never mixes signals, and the report names the provider that actually answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gridbridge.agent.errors import AgentConfigError, ProviderError
from gridbridge.agent.hourly import prefix_length
from gridbridge.agent.signals import AgentSignal

__all__ = ["ChainAnswer", "Forecast", "HourlyProvider", "ProviderChain"]


@dataclass(frozen=True, slots=True)
class Forecast:
    """One provider's hourly values: carbon in gCO2eq/kWh (with ``signal``), or price in
    EUR/MWh (``signal`` None). Hours the provider could not give are simply absent."""

    provider: str
    values: dict[datetime, float]
    signal: AgentSignal | None = None
    notes: tuple[str, ...] = field(default=())


class HourlyProvider(Protocol):
    """A carbon-intensity or price provider."""

    name: str
    signal: AgentSignal | None

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """Values for as many of ``hours`` as it can; raise ``ProviderError`` if it cannot."""
        ...


@dataclass(frozen=True, slots=True)
class ChainAnswer:
    """The answer used, how many leading hours it covers, and why earlier providers failed."""

    forecast: Forecast
    covered: int
    failures: tuple[str, ...]


class ProviderChain:
    """Providers of one kind ("carbon" or "price"), tried in order."""

    def __init__(self, kind: str, providers: Sequence[HourlyProvider], *, min_hours: int,
                 signal: AgentSignal | None = None) -> None:
        if not providers:
            raise AgentConfigError(f"no {kind} provider is configured — fix: add a [[{kind}]] "
                                   "table to site.toml")
        mixed = [p for p in providers if p.signal != signal]
        if mixed:
            # Falling back from one signal to another would put two kinds of number in one
            # zone's series (DESIGN.md: a figure never mixes them).
            names = ", ".join(f"{p.name} ({p.signal})" for p in mixed)
            raise AgentConfigError(
                f"{kind} providers {names} do not give the site's signal '{signal}' — fix: "
                f"list only providers of signal '{signal}' (fallback never mixes signals)")
        self.kind = kind
        self.providers = list(providers)
        self.min_hours = min_hours
        self.signal = signal

    def forecast(self, hours: Sequence[datetime]) -> ChainAnswer:
        """The first provider's answer that covers at least ``min_hours`` leading hours."""
        need = min(self.min_hours, len(hours))
        failures: list[str] = []
        for provider in self.providers:
            try:
                answer = provider.forecast(hours)
            except ProviderError as exc:
                failures.append(str(exc))
                continue
            if answer.signal != self.signal:
                failures.append(f"{provider.name}: answered signal {answer.signal}, not "
                                f"{self.signal}; ignored")
                continue
            covered = prefix_length(hours, answer.values)
            if covered < need:
                failures.append(f"{provider.name}: covers {covered} of the {len(hours)} hours "
                                f"asked from the first; at least {need} are needed")
                continue
            return ChainAnswer(answer, covered, tuple(failures))
        raise ProviderError(f"no {self.kind} provider answered:\n" +
                            "\n".join(f"  - {f}" for f in failures))

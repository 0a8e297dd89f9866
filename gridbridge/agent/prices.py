"""Price providers besides replay (:class:`gridbridge.agent.replay.ReplayPrice`).

Prices are the zone's wholesale electricity price in EUR/MWh per UTC hour; they may be
negative (DESIGN.md). The site's tariff adder is the exchange's business, not the agent's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gridbridge.agent.forecasts import Forecast
from gridbridge.agent.signals import AgentSignal

__all__ = ["FixedTariff"]


class FixedTariff:
    """One price for every hour: a regulated or contracted tariff (EUR/MWh)."""

    signal: AgentSignal | None = None
    name = "fixed"

    def __init__(self, eur_per_mwh: float) -> None:
        self.eur_per_mwh = eur_per_mwh

    def forecast(self, hours: Sequence[datetime]) -> Forecast:
        """``eur_per_mwh`` for each hour."""
        return Forecast(self.name, {hour: self.eur_per_mwh for hour in hours})

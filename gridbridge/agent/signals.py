"""Carbon-intensity signals inside the agent, and which of them the exchange accepts.

* ``direct`` — location-based average, operational (combustion) emissions only;
* ``lifecycle`` — location-based average including the plants' life-cycle emissions;
* ``marginal`` — the emissions rate of the generators that respond to a change in load
  (WattTime's MOER). Neither of the averages: DESIGN.md forbids mixing it with them.

A provider chain may only combine providers of one signal, and that signal must be the
site's. The exchange's contract (:data:`gridbridge.exchange.contract.Signal`) decides which
signals can be reported; today it takes the two averages only, so a ``marginal`` site is
refused at configuration time, and accepted automatically once the contract grows.
"""

from __future__ import annotations

from typing import Literal, get_args

from gridbridge.exchange.contract import Signal as ReportSignal

__all__ = ["AGENT_SIGNALS", "REPORTABLE_SIGNALS", "AgentSignal"]

AgentSignal = Literal["direct", "lifecycle", "marginal"]
AGENT_SIGNALS: tuple[str, ...] = get_args(AgentSignal)
REPORTABLE_SIGNALS: tuple[str, ...] = get_args(ReportSignal)

"""Delivering spooled reports to the exchange, oldest first.

``POST {exchange}{path}`` with ``Authorization: Bearer <token>`` and the spooled JSON body.
What the answer means (the contract in :mod:`gridbridge.exchange.contract`):

* 201 ``Ack(status="stored")`` or 200 ``Ack(status="duplicate")`` — the exchange has it:
  the report leaves the spool;
* 401, 403, 404, 405 — the agent itself is misconfigured (token, site id, URL): every
  report would get the same answer, so nothing is dead-lettered; draining stops, the
  backlog waits for the operator's fix and is delivered afterwards;
* any other 4xx (400, 409, 413, 422, ...) — the exchange refuses *this* report: it moves
  to the spool's dead-letter table with the status and the exchange's reason;
* 408, 425, 429, 5xx, connection errors, timeouts — retried with back-off
  (:mod:`gridbridge.agent.retry`); still failing, draining stops until the next cycle.

Retrying a POST is safe: the report id makes delivery idempotent. Draining stops at the
first report that cannot be delivered, so reports reach the exchange in the order they were
measured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from gridbridge.agent.retry import Http, RetriesExhausted
from gridbridge.agent.spool import Spool
from gridbridge.exchange.contract import Ack, AssignmentOut

__all__ = ["HOLD_STATUSES", "AssignmentsError", "Delivered", "DrainResult", "ExchangeUplink",
           "Held", "Outcome", "Refused", "Unavailable", "assignments_path", "drain",
           "metering_path", "telemetry_path"]

log = logging.getLogger("gridbridge.agent")

_ASSIGNMENTS = TypeAdapter(list[AssignmentOut])

#: Answers that blame the agent's configuration, not the report.
HOLD_STATUSES = frozenset({401, 403, 404, 405})


def telemetry_path(site_id: str) -> str:
    """``/v1/sites/{site_id}/telemetry``."""
    return f"/v1/sites/{quote(site_id, safe='')}/telemetry"


def metering_path(site_id: str) -> str:
    """``/v1/sites/{site_id}/metering``."""
    return f"/v1/sites/{quote(site_id, safe='')}/metering"


def assignments_path(site_id: str) -> str:
    """``/v1/sites/{site_id}/assignments``."""
    return f"/v1/sites/{quote(site_id, safe='')}/assignments"


class AssignmentsError(Exception):
    """The assignments could not be fetched (the message says why)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The exchange acknowledged the report."""

    status: Literal["stored", "duplicate"]


@dataclass(frozen=True, slots=True)
class Refused:
    """The exchange refused the report for its content (dead-letter it)."""

    status_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Held:
    """The exchange refused the agent (token, site, URL): keep the report, stop draining."""

    status_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """No answer worth acting on (down, 5xx, timeouts): try again later."""

    reason: str


Outcome = Delivered | Refused | Held | Unavailable


class ExchangeUplink:
    """POSTs report bodies to one exchange as one site."""

    def __init__(self, http: Http, *, base_url: str, token: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token

    def assignments(self, site_id: str) -> list[AssignmentOut]:
        """``GET /v1/sites/{site_id}/assignments`` (retried like every call);
        :class:`AssignmentsError` when there is no valid 200 answer."""
        url = self.base_url + assignments_path(site_id)
        try:
            response = self.http.request("GET", url,
                                         headers={"Authorization": f"Bearer {self.token}"})
        except RetriesExhausted as exc:
            raise AssignmentsError(f"{url}: {exc}") from None
        if response.status_code != 200:
            raise AssignmentsError(f"{url}: HTTP {response.status_code}: "
                                   f"{response.text[:300].strip()}")
        try:
            return _ASSIGNMENTS.validate_json(response.content)
        except ValidationError as exc:
            raise AssignmentsError(f"{url}: not a list of assignments: {exc}") from None

    def post(self, path: str, body: str, report_id: str) -> Outcome:
        """Deliver one spooled body; never raises for network or HTTP trouble."""
        url = self.base_url + path
        try:
            response = self.http.request(
                "POST", url, content=body.encode("utf-8"),
                headers={"Authorization": f"Bearer {self.token}",
                         "Content-Type": "application/json"})
        except RetriesExhausted as exc:
            return Unavailable(f"{url}: {exc}")
        code = response.status_code
        text = response.text[:2000].strip()
        if 200 <= code < 300:
            try:
                ack = Ack.model_validate_json(response.content)
            except ValidationError:
                return Unavailable(f"{url}: HTTP {code} without a valid Ack body: {text[:200]}")
            if ack.report_id != report_id:
                return Unavailable(f"{url}: acknowledged report {ack.report_id}, not {report_id}")
            return Delivered(ack.status)
        if code in HOLD_STATUSES:
            return Held(code, f"{url}: HTTP {code}: {text[:300]}")
        if 400 <= code < 500:
            return Refused(code, text or f"HTTP {code}")
        return Unavailable(f"{url}: unexpected HTTP {code}: {text[:200]}")


@dataclass(slots=True)
class DrainResult:
    """What one drain did."""

    stored: int = 0
    duplicates: int = 0
    dead_lettered: list[str] = field(default_factory=list)
    remaining: int = 0
    stopped_by: str | None = None

    @property
    def delivered(self) -> int:
        """Reports that left the spool acknowledged."""
        return self.stored + self.duplicates


def drain(spool: Spool, uplink: ExchangeUplink,
          cancelled: Callable[[], bool] = lambda: False) -> DrainResult:
    """Deliver the spool's reports oldest first until it is empty or one cannot be delivered.

    ``cancelled`` is checked between reports (Ctrl-C finishes the report in flight, then
    stops). Returns counts and, when it stopped early, why.
    """
    result = DrainResult()
    while not cancelled():
        batch = spool.pending(limit=1)
        if not batch:
            break
        entry = batch[0]
        outcome = uplink.post(entry.path, entry.body, entry.report_id)
        if isinstance(outcome, Delivered):
            spool.ack(entry.report_id)
            if outcome.status == "stored":
                result.stored += 1
            else:
                result.duplicates += 1
            log.info("report %s delivered (%s)", entry.report_id, outcome.status)
        elif isinstance(outcome, Refused):
            spool.dead_letter(entry.report_id, outcome.status_code, outcome.reason)
            result.dead_lettered.append(entry.report_id)
            log.error("report %s refused by the exchange (HTTP %d): %s; moved to the spool's "
                      "dead_letter table", entry.report_id, outcome.status_code, outcome.reason)
        else:
            spool.record_failure(entry.report_id, outcome.reason)
            result.stopped_by = outcome.reason
            if isinstance(outcome, Held):
                log.error("the exchange refuses this agent (HTTP %d): %s — fix the token, "
                          "site_id or exchange url in site.toml; reports wait in the spool",
                          outcome.status_code, outcome.reason)
            else:
                log.warning("exchange unavailable, will retry: %s", outcome.reason)
            break
    else:
        result.stopped_by = "stopped"
    result.remaining = spool.count()
    return result

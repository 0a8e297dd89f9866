"""Helpers for the exchange tests: a real server process, an initialised database, tokens,
valid bodies, and row counts read straight from the database."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from gridbridge.demo.processes import ExchangeProcess, free_port
from gridbridge.exchange import schema as t
from gridbridge.exchange.forecast import HourForecast, unpack
from gridbridge.exchange.registry import load_registry, read_registry_folder
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import create_token
from tests.conftest import BRIDGE_2023

__all__ = [
    "OTHER_SITE",
    "SITE",
    "SITE_TYPES",
    "SITE_ZONE",
    "START",
    "TOKENS",
    "Server",
    "bid_body",
    "counts",
    "free_port",
    "init_exchange",
    "query",
    "raw_json",
    "round_body",
    "sqlite_url",
    "stored_forecasts",
    "telemetry",
]

#: The sites the tests report for: (site_id, zone, its GPU pools).
SITE, SITE_ZONE, SITE_TYPES = "KR-SUWON-1", "KR", ("A100", "H100")
OTHER_SITE = "SG-NSCC-1"
START = datetime(2023, 7, 3, tzinfo=UTC)


def sqlite_url(path: Path) -> str:
    """``sqlite:////abs/path`` for a file."""
    return f"sqlite:///{path}"


#: name -> (role, subject): the tokens every test database gets.
TOKENS: dict[str, tuple[str, str | None]] = {
    "site": ("site", SITE),
    "other_site": ("site", OTHER_SITE),
    "member_kr": ("member", "KR"),
    "member_de": ("member", "DE"),
    "planner": ("planner", None),
    "treasurer": ("treasurer", None),
    "admin": ("admin", None),
}


def init_exchange(url: str, sites: Iterable[str] = ()) -> dict[str, str]:
    """Create the exchange in ``url``, load datasets/bridge-2023, and create one token per
    :data:`TOKENS` entry and one ``site:<site_id>`` token per site of ``sites``; return the
    tokens by name."""
    now = datetime.now(UTC)
    with ExchangeStore.open(url, create=True) as store:
        load_registry(store, read_registry_folder(BRIDGE_2023))
        tokens = {name: create_token(store, role, subject, now)[1]
                  for name, (role, subject) in TOKENS.items()}
        for site_id in sites:
            tokens[f"site:{site_id}"] = create_token(store, "site", site_id, now)[1]
        return tokens


class Server(ExchangeProcess):
    """``python -m gridbridge exchange serve`` on a free port of 127.0.0.1 (a new one at each
    start, so a restart never waits for the old socket)."""

    def __init__(self, db_url: str, log_path: Path, args: tuple[str, ...] = ()) -> None:
        super().__init__(db_url, log_path, args=args)

    def start(self, timeout_s: float = 30.0) -> Server:  # type: ignore[override]
        """Start it and wait until /healthz answers 200."""
        self.port = 0
        super().start(timeout_s)
        return self

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def telemetry(report_id: str, *, hours: int = 3, zone: str = SITE_ZONE,
              signal_name: str = "direct", types: tuple[str, ...] = SITE_TYPES,
              start: datetime = START) -> dict[str, Any]:
    """A valid telemetry report body for :data:`SITE`."""
    return {
        "report_id": report_id,
        "zone": zone,
        "signal": signal_name,
        "provider": "csv-replay",
        "measured_at_utc": "2023-07-02T23:05:00Z",
        "hours": [{"hour_utc": (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%MZ"),
                   "gpus_free": {g: 8 * (h % 4) for g in types},
                   "carbon_g_per_kwh": 420.5 + h, "price_eur_per_mwh": 95.0 - h}
                  for h in range(hours)],
    }


def round_body(days: int = 7) -> dict[str, Any]:
    """A valid round: a week from 2023-07-03, 80 EUR/t, direct intensities."""
    end = START + timedelta(days=days)
    return {"window_start_utc": "2023-07-03T00:00Z",
            "window_end_utc": end.strftime("%Y-%m-%dT%H:%MZ"),
            "carbon_price_eur_per_t": 80.0, "carbon_signal": "direct"}


def bid_body(bid_id: str, **changes: Any) -> dict[str, Any]:
    """A valid bid inside :func:`round_body`'s window."""
    return {"bid_id": bid_id, "gpus": 16,
            "options": [{"gpu_type": "H100", "hours": 24}, {"gpu_type": "A100", "hours": 56}],
            "release_utc": "2023-07-03T00:00Z", "deadline_utc": "2023-07-06T00:00Z",
            "value_eur": 25000.0, "allowed_jurisdictions": ["KR", "DE"]} | changes


def raw_json(body: Any) -> bytes:
    """JSON as Python writes it, NaN and Infinity literals allowed (orjson cannot)."""
    return json.dumps(body, allow_nan=True).encode()


def counts(db_url: str, *, audit: bool = False) -> dict[str, int]:
    """Rows per exchange table, read straight from the database; the audit log (which
    every state-changing call, refused or not, adds to) only with ``audit``."""
    engine = sa.create_engine(db_url)
    tables = [table for table in t.metadata.sorted_tables if table.name.startswith("exchange_")
              and (audit or table is not t.audit)]
    try:
        with engine.connect() as conn:
            return {table.name.removeprefix("exchange_"): conn.execute(
                        sa.select(sa.func.count()).select_from(table)).scalar_one()
                    for table in tables}
    finally:
        engine.dispose()


def query(db_url: str, statement: sa.Executable) -> list[sa.Row[Any]]:
    """Run one statement on the database (its own connection, committed)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(statement)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def stored_forecasts(db_url: str) -> dict[str, list[dict[str, HourForecast]]]:
    """report id -> the stored forecast (hour -> values) of each row with that id, read
    straight from the database (more than one row would be a duplicate)."""
    r = t.telemetry_reports
    found: dict[str, list[dict[str, HourForecast]]] = {}
    for report_id, document in query(db_url, sa.select(r.c.report_id, r.c.forecast_json)):
        found.setdefault(report_id, []).append(unpack(document))
    return found


@dataclass
class RedeliveringAgents:
    """Agents posting telemetry to ``server`` from threads as the site agent's spool does:
    each report is delivered again after a 5xx or a broken connection, backing off (doubling
    from 50 ms up to 1 s), for up to ``give_up_s`` seconds. Records what they saw."""

    server: Server
    token: str
    hours: int = 48
    give_up_s: float = 60.0
    acked: dict[str, int] = field(default_factory=dict)  # report id -> 200 or 201
    refused: list[str] = field(default_factory=list)  # 4xx answers: none expected
    unavailable: list[int | str] = field(default_factory=list)  # 5xx, or "no answer"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _deliver(self, client: httpx.Client, report_id: str) -> bool:
        """Deliver one report; False when it was refused (the agent stops)."""
        wait, deadline = 0.05, time.monotonic() + self.give_up_s
        while time.monotonic() < deadline:
            try:
                answer = client.post(f"/v1/sites/{SITE}/telemetry",
                                     json=telemetry(report_id, hours=self.hours))
            except httpx.TransportError:
                answer = None
            with self._lock:
                if answer is not None and answer.status_code in (200, 201):
                    self.acked[report_id] = answer.status_code
                    return True
                if answer is not None and answer.status_code < 500:
                    self.refused.append(f"{report_id}: {answer.status_code} {answer.text}")
                    return False
                self.unavailable.append(answer.status_code if answer else "no answer")
            time.sleep(wait)
            wait = min(wait * 2, 1.0)
        return True  # given up: not acknowledged, which the caller's checks will show

    def _agent(self, number: int, reports: int, pause_s: float) -> None:
        with self.server.client(self.token) as client:
            for n in range(reports):
                if not self._deliver(client, f"agent-{number}-{n}"):
                    return
                time.sleep(pause_s)

    def start(self, agents: int, reports: int, pause_s: float = 0.0) -> list[threading.Thread]:
        """Start ``agents`` threads of ``reports`` reports each (``pause_s`` between two);
        join the threads returned."""
        threads = [threading.Thread(target=self._agent, args=(i, reports, pause_s))
                   for i in range(agents)]
        for thread in threads:
            thread.start()
        return threads

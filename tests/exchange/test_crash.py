"""Kill the exchange (SIGKILL) while sites report, restart it on the same database: every
report it acknowledged is there exactly once and whole, and re-delivering is harmless."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import Databases
from tests.exchange.server import (
    SITE,
    SITE_TYPES,
    Server,
    init_exchange,
    stored_forecasts,
    telemetry,
)

HOURS = 168  # a week's forecast per report
AGENTS = 4
ACKS_BEFORE_KILL = 40


@pytest.fixture
def server(tmp_path: Path, databases: Databases) -> Iterator[tuple[Server, str]]:
    url = databases.fresh("crash")
    tokens = init_exchange(url)
    running = Server(url, tmp_path / "server.log").start()
    try:
        yield running, tokens["site"]
    finally:
        running.stop()


def _report_id(agent: int, n: int) -> str:
    return f"a{agent}-r{n:05d}"


def test_acknowledged_reports_survive_sigkill_exactly_once(
        server: tuple[Server, str]) -> None:
    exchange, token = server
    acked: dict[str, int] = {}  # report id -> status of its acknowledgement
    sent: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    refused: list[str] = []  # answers other than 201: asserted in the test's own thread

    def agent(number: int) -> None:
        with exchange.client(token) as client:
            n = 0
            while not stop.is_set():
                report_id = _report_id(number, n)
                with lock:
                    sent.append(report_id)
                try:
                    answer = client.post(f"/v1/sites/{SITE}/telemetry",
                                         json=telemetry(report_id, hours=HOURS))
                except httpx.TransportError:
                    return  # the exchange is gone; this report's fate is unknown
                with lock:
                    if answer.status_code != 201:
                        refused.append(f"{report_id}: {answer.status_code} {answer.text}")
                        return
                    acked[report_id] = answer.status_code
                n += 1

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(AGENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    exchange.kill()  # mid-stream: requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not refused, refused
    assert len(acked) >= ACKS_BEFORE_KILL

    def stored() -> dict[str, tuple[int, int, int]]:
        """report id -> (its rows, hours, free-GPU figures), straight from the file."""
        return {report_id: (len(rows), len(rows[0]),
                            sum(len(h.gpus_free) for h in rows[0].values()))
                for report_id, rows in stored_forecasts(exchange.db_url).items()}

    whole = (1, HOURS, HOURS * len(SITE_TYPES))
    after_crash = stored()
    # Every acknowledged report is there, once and whole; an unacknowledged one (in flight
    # at the kill) is either there whole or absent: never partial.
    assert set(acked) <= set(after_crash)
    assert all(found == whole for found in after_crash.values()), after_crash
    assert set(after_crash) <= set(sent)

    exchange.start()
    with exchange.client(token) as client:
        for report_id in sent:  # what an agent's spool would re-deliver
            answer = client.post(f"/v1/sites/{SITE}/telemetry",
                                 json=telemetry(report_id, hours=HOURS))
            expected = 200 if report_id in after_crash else 201
            assert answer.status_code == expected, (report_id, answer.text)
    after_restart = stored()
    assert set(after_restart) == set(sent)
    assert all(found == whole for found in after_restart.values())

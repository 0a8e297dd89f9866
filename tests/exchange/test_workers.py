"""``gridbridge exchange serve --workers N``: N processes serve one port on one database
(each request answered by one of them), every report stored once, and stopping the server
stops them all."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from tests.databases import Databases
from tests.exchange.server import SITE, Server, init_exchange, query, telemetry

URL = f"/v1/sites/{SITE}/telemetry"


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_two_workers_share_the_port_and_store_each_report_once(
        tmp_path: Path, databases: Databases) -> None:
    url = databases.fresh("workers")
    tokens = init_exchange(url)
    server = Server(url, tmp_path / "server.log", args=("--workers", "2")).start()
    assert server.process is not None
    try:
        workers = _children(server.process.pid)
        # uvicorn's supervisor runs the workers (plus, maybe, multiprocessing's tracker).
        assert len(workers) >= 2, workers
        acked: list[int] = []
        lock = threading.Lock()

        def agent(number: int) -> None:
            with server.client(tokens["site"]) as client:
                for n in range(10):
                    answer = client.post(URL, json=telemetry(f"w-{number}-{n}", hours=24))
                    with lock:
                        acked.append(answer.status_code)

        threads = [threading.Thread(target=agent, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert acked == [201] * 60
        # Each process counts what it stored itself.
        stored = []
        for _ in range(60):  # a new connection each time
            with httpx.Client(base_url=server.base_url) as client:
                text = client.get("/metrics").text
            stored.append(int(float(re.search(
                r"^gridbridge_telemetry_reports_total (\S+)$", text, re.M).group(1))))
        # Two processes answered: two counts that add up to the 60 (how the kernel spread
        # the agents' connections decides the split, maybe all to one), or 30 each.
        seen = set(stored)
        assert (len(seen) == 2 and sum(seen) == 60) or seen == {30}, sorted(seen)
    finally:
        server.stop()
    assert not _children(server.process.pid)
    rows = query(url, sa.select(t.telemetry_reports.c.report_id, sa.func.count())
                 .group_by(t.telemetry_reports.c.report_id))
    assert len(rows) == 60 and {n for _, n in rows} == {1}

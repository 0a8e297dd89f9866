"""A full disk under the exchange (SQLite): the write that does not fit is refused with a
clear 503 and leaves nothing behind, what was acknowledged before stays stored, reads go on,
and once there is room again the refused report is taken.

The writes fail for real: the server runs with a file-size limit (``RLIMIT_FSIZE``; Python
ignores SIGXFSZ, so the write returns EFBIG), and the database's write-ahead log cannot grow
past it, as it cannot on a full file system (ENOSPC). SQLite reports this one as "disk I/O
error" rather than "database or disk is full", and rolls the transaction back the same way.
(PostgreSQL's out-of-space path is its own server's; the read-only test covers the
exchange's side of a database refusing writes.)
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from gridbridge.demo.processes import free_port
from gridbridge.exchange import schema as t
from tests.exchange.server import SITE, Server, init_exchange, query, telemetry

URL = f"/v1/sites/{SITE}/telemetry"
ROOM_BYTES = 200_000  # what the database's files may grow by: a few week-long reports


def _serve_with_file_limit(db_url: str, log_path: Path,
                           limit: int) -> tuple[subprocess.Popen[bytes], str]:
    """``gridbridge exchange serve`` whose process may write no file past ``limit`` bytes."""
    port = free_port()

    def limit_files() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gridbridge", "exchange", "serve", "--db", db_url,
             "--port", str(port), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_files)
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the exchange did not start: {log_path.read_text()[-2000:]}")


def test_a_full_disk_answers_503_stores_nothing_partial_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "exchange.db"
    url = f"sqlite:///{path}"
    tokens = init_exchange(url)
    sizes = [p.stat().st_size for p in tmp_path.glob("exchange.db*")]
    process, base_url = _serve_with_file_limit(url, tmp_path / "server.log",
                                               max(sizes) + ROOM_BYTES)
    acked: list[str] = []
    try:
        with httpx.Client(base_url=base_url, timeout=30,
                          headers={"Authorization": f"Bearer {tokens['site']}"}) as client:
            for n in range(100):
                answer = client.post(URL, json=telemetry(f"full-{n}", hours=168))
                if answer.status_code != 201:
                    break
                acked.append(f"full-{n}")
            refused = f"full-{len(acked)}"
            assert answer.status_code == 503, answer.text
            detail = answer.json()["detail"]
            reason = detail.split(": ", 1)[1]  # after the database's URL
            assert "disk I/O error" in reason and "nothing was written" in reason
            assert "disk has room" in reason  # the fix names the likely cause
            # Still full: refused again, the same way; reads go on.
            assert client.post(URL, json=telemetry(refused, hours=168)).status_code == 503
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/registry").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert len(acked) >= 1, "the disk was full from the start: weak test"
    with sqlite3.connect(path) as conn:  # a whole database, not a torn one
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = [r for (r,) in query(url, sa.select(t.telemetry_reports.c.report_id))]
    assert sorted(stored) == sorted(acked)  # every acknowledged report, nothing else

    server = Server(url, tmp_path / "server.log").start()  # room again
    try:
        with server.client(tokens["site"]) as client:
            assert client.post(URL, json=telemetry(refused, hours=168)).status_code == 201
    finally:
        server.stop()

"""``gridbridge demo``, as a user runs it: a real exchange process, real agent processes and
real HTTP on the bundled data; then what it left in the database, checked directly."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import sqlalchemy as sa

from gridbridge.agent.spool import Spool
from gridbridge.exchange import schema as t
from gridbridge.ledger.store import ledger_postings
from tests.conftest import BRIDGE_2023, REPO_ROOT, W27
from tests.exchange.server import query

DEMO_TIMEOUT_S = 300


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "gridbridge", "demo", "--port", "0", *args]


def test_the_demo_runs_the_whole_system_and_exits(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run(_demo("--no-serve", "--out", str(folder), "--time-limit", "5"),
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=DEMO_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    round_id = re.search(r"round (R-20230703-[0-9a-f]+) opened by the planner", out)
    assert round_id, out
    assert "500 sealed bids submitted by 5 members" in out
    assert "round settled" in out and "summing to 0 cents" in out
    for member in ("CA", "DE", "GB", "KR", "SG"):
        assert re.search(rf"│ {member} +│ +-[\d,]+\.\d\d │", out), out

    db = f"sqlite:///{folder / 'exchange.db'}"
    rid = round_id[1]
    [(state,)] = query(db, sa.select(t.rounds.c.state).where(t.rounds.c.round_id == rid))
    assert state == "settled"
    bids = query(db, sa.select(sa.func.count()).select_from(t.bids))[0][0]
    assert bids == pl.read_csv(W27 / "bids.csv").height
    # Every site reported twice (before the window, and past it with its metering).
    reports = query(db, sa.select(t.telemetry_reports.c.site_id, sa.func.count())
                    .group_by(t.telemetry_reports.c.site_id))
    assert dict(reports) == dict.fromkeys(pl.read_csv(W27 / "sites.csv")["site_id"], 2)
    # Every placement-hour metered exactly once, and the ledger balanced to the cent.
    placed = query(db, sa.select(t.placements.c.start_utc, t.placements.c.end_utc))
    hours = sum(int((pl.Series([e]).str.to_datetime("%Y-%m-%dT%H:%MZ")[0]
                     - pl.Series([s]).str.to_datetime("%Y-%m-%dT%H:%MZ")[0]).total_seconds())
                // 3600 for s, e in placed)
    assert query(db, sa.select(sa.func.count()).select_from(t.metering_rows))[0][0] == hours
    assert query(db, sa.select(sa.func.sum(ledger_postings.c.amount_cents)))[0][0] == 0
    # The tokens are their owner's only; the agents delivered everything.
    tokens = folder / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert {"admin", "planner", "treasurer", "member:KR", "site:KR-SUWON-1"} <= set(
        json.loads(tokens.read_text())["tokens"])
    for spool in (folder / "agents").glob("*.spool.sqlite"):
        with Spool.open(spool) as opened:
            assert (opened.count(), len(opened.dead_letters())) == (0, 0), spool


def test_the_demo_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    bundle = tmp_path / "market"
    made = subprocess.run(
        [sys.executable, "-m", "gridbridge", "market", "make", "--dataset", str(BRIDGE_2023),
         "--week", "2023-W27", "--bids", "30", "--sites", "6", "--out", str(bundle)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    process = subprocess.Popen(
        _demo("--out", str(tmp_path / "demo"), "--time-limit", "2", "--bundle", str(bundle),
              "--app-port", "0"),
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops it all" in line or time.monotonic() > deadline:
                break
        text = "".join(lines)
        serving = re.search(r"keeps serving at (http://127\.0\.0\.1:\d+)", text)
        assert serving, text
        assert "30 sealed bids" in text and "round settled" in text
        app = re.search(r"the app is on (http://127\.0\.0\.1:\d+)", text)
        assert app, text
        assert httpx.get(f"{serving[1]}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{app[1]}/_stcore/health", timeout=5).status_code == 200
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=45)[0]
        assert process.returncode == 0, text + rest
        assert "stopping the app and the exchange" in rest
        for url in (f"{serving[1]}/healthz", f"{app[1]}/_stcore/health"):
            try:
                httpx.get(url, timeout=2)
                raise AssertionError(f"{url} still answers after Ctrl-C")
            except httpx.TransportError:
                pass
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

"""End to end: the real exchange server and real site agents (``python -m gridbridge agent
run --once`` subprocesses) over real HTTP. One agent per grid zone reports its GPUs and the
replayed 2023 carbon and price; a round over those hours is cleared; the agents, run again
on a clock past the window, fetch their assignments and post replayed metering, which trues
the round up: correction lines in a ledger that still sums to zero, the round settled and
every spool empty."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from gridbridge.agent.spool import Spool
from gridbridge.exchange import schema as t
from tests.conftest import BRIDGE_2023, REPO_ROOT
from tests.databases import Databases
from tests.exchange.conftest import WINDOW, Exchange, _bid, _open, _wait_until_done, serving
from tests.exchange.server import counts, init_exchange, query

#: One site per zone of the registry (the snapshot needs grid hours of every zone a site
#: uses; a site without telemetry just offers 0 GPUs). Each has H100s.
SITES = ("KR-SUWON-1", "SG-NSCC-1", "CA-TORONTO-1", "CA-MONTREAL-1", "GB-DARESBURY-1",
         "DE-DARMSTADT-1")
#: Free GPUs each agent reports per pool type and hour.
FREE = 16
#: The first run's clock (a whole hour; the replay clock then runs on, so the first hour
#: reported is the next one: the window's first hour).
BEFORE = "2023-07-02T23:00Z"
#: The second run's clock: the window's end, so every placement (inside it) has ended.
AFTER = "2023-07-05T00:00Z"
AGENT_TIMEOUT_S = 60
METERED = re.compile(r"metering: \d+ report\(s\), (?P<hours>\d+) placement-hour\(s\), "
                     r"(?P<waiting>\d+) ended hour\(s\) waiting for the source"
                     r"(?P<error>; not metered this cycle: .*)?")


def _site_toml(folder: Path, site_id: str, zone: str, pools: list[str], url: str,
               token: str, clock: str) -> Path:
    dataset = json.dumps(str(BRIDGE_2023))
    gpus = ", ".join(f"{g} = {FREE}" for g in pools)
    path = folder / f"{site_id}.toml"
    path.write_text(f"""\
[agent]
site_id = "{site_id}"
zone = "{zone}"
signal = "direct"
horizon_hours = 48
min_forecast_hours = 24
cycle_seconds = 300
spool = {json.dumps(str(folder / f"{site_id}.spool.sqlite"))}
clock_start_utc = "{clock}"

[exchange]
url = "{url}"
token = "{token}"

[http]
timeout_seconds = 30
retries = 1
backoff_seconds = 0.2
backoff_max_seconds = 1

[inventory]
source = "static"
gpus = {{ {gpus} }}

[[carbon]]
provider = "replay"
dataset = {dataset}

[[price]]
provider = "replay"
dataset = {dataset}

[metering]
source = "replay"
dataset = {dataset}
seed = 1
energy_noise = 0.03
carbon_noise = 0.02
""")
    return path


@pytest.fixture(scope="module")
def agent_exchange(tmp_path_factory: pytest.TempPathFactory,
                   databases: Databases) -> Iterator[Exchange]:
    """A server on a fresh database with a token per site of :data:`SITES`."""
    folder = tmp_path_factory.mktemp("agent-e2e")
    url = databases.fresh("agents")
    tokens = init_exchange(url, SITES)
    with serving(url, folder, tokens) as running:
        yield running


def _configs(ex: Exchange, folder: Path, clock: str) -> dict[str, Path]:
    registry = pl.read_csv(BRIDGE_2023 / "sites.csv").filter(pl.col("site_id").is_in(SITES))
    assert registry.height == len(SITES)
    out = {}
    for site_id, zone, pools in registry.select("site_id", "zone", "gpu_pools").iter_rows():
        types = [pool.split(":")[0] for pool in pools.split(";")]
        out[site_id] = _site_toml(folder, site_id, zone, types, ex.server.base_url,
                                  ex.tokens[f"site:{site_id}"], clock)
    return out


def _run_agents(configs: dict[str, Path]) -> dict[str, str]:
    """``agent run --once`` for every config at once; each must exit 0 (spool drained).
    Returns each agent's output."""
    started = {site: subprocess.Popen(
        [sys.executable, "-m", "gridbridge", "agent", "run", "--config", str(path), "--once"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for site, path in configs.items()}
    outputs, failed = {}, []
    for site, process in started.items():
        try:
            outputs[site] = process.communicate(timeout=AGENT_TIMEOUT_S)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            outputs[site] = process.communicate()[0]
        if process.returncode != 0:
            failed.append(f"{site} exited {process.returncode}:\n{outputs[site]}")
    assert not failed, "\n\n".join(failed)
    return outputs


def _metered_hours(outputs: dict[str, str]) -> int:
    """The placement-hours the agents say they metered (each agent's last output line,
    ``metering: N report(s), M placement-hour(s), 0 ended hour(s) waiting ...``)."""
    total = 0
    for site, text in outputs.items():
        found = METERED.search(text)
        assert found, f"{site} printed no metering line:\n{text}"
        assert found["error"] is None, f"{site}:\n{text}"
        assert found["waiting"] == "0", f"{site}:\n{text}"
        total += int(found["hours"])
    return total


def _spool_state(path: Path) -> tuple[int, int]:
    with Spool.open(path) as spool:
        return spool.count(), len(spool.dead_letters())


def test_agents_report_a_round_clears_and_their_metering_settles_it(
        agent_exchange: Exchange, tmp_path: Path) -> None:
    ex = agent_exchange

    # 1. The agents report the window's 48 hours (replayed 2023-07-03 .. 07-05).
    configs = _configs(ex, tmp_path, BEFORE)
    _run_agents(configs)
    assert counts(ex.db_url)["telemetry_reports"] == len(SITES)
    reported = query(ex.db_url, sa.select(t.telemetry_reports.c.site_id,
                                          t.telemetry_reports.c.signal))
    assert sorted(reported) == sorted((site, "direct") for site in SITES)

    # 2. A round over those hours: bids, gate closure, clearing in the server's worker.
    round_id = _open(ex)
    _bid(ex, "member_kr", round_id, "kr-train", gpus=16, value_eur=60000.0,
         options=[{"gpu_type": "H100", "hours": 24}])
    _bid(ex, "member_kr", round_id, "kr-small", gpus=8, value_eur=9000.0,
         options=[{"gpu_type": "H100", "hours": 12}])
    _bid(ex, "member_de", round_id, "de-train", gpus=16, value_eur=30000.0,
         options=[{"gpu_type": "H100", "hours": 24}, {"gpu_type": "A100", "hours": 40}])
    closed = ex.client("planner").post(f"/v1/rounds/{round_id}/close")
    assert closed.status_code == 200, closed.text
    done = _wait_until_done(ex, round_id)
    assert done["state"] == "cleared", done.get("reason")
    placed: list[dict[str, Any]] = ex.client("planner").get(
        f"/v1/rounds/{round_id}/placements").json()
    assert placed, "the round placed nothing"
    assert {p["site_id"] for p in placed} <= set(SITES)
    assert all(p["end_utc"] <= WINDOW[1] for p in placed)
    placed_hours = sum(
        int((datetime.fromisoformat(p["end_utc"]) - datetime.fromisoformat(p["start_utc"]))
            .total_seconds()) // 3600 for p in placed)

    # 3. The agents again, on a clock past the window: assignments fetched, metering posted.
    outputs = _run_agents(_configs(ex, tmp_path, AFTER))
    assert _metered_hours(outputs) == placed_hours
    assert counts(ex.db_url)["telemetry_reports"] == 2 * len(SITES)
    metered = query(ex.db_url, sa.select(sa.func.count()).select_from(t.metering_rows))
    assert metered[0][0] == placed_hours  # every placement-hour once

    # 4. Trued up: corrections in a balanced ledger, the round settled, every spool empty.
    lines = ex.client("treasurer").get(f"/v1/rounds/{round_id}/ledger").json()
    corrections = [ln for ln in lines if ln["kind"] == "correction"]
    assert corrections, "the metering posted no correction"
    assert sum(ln["amount_cents"] for ln in corrections) == 0
    assert sum(ln["amount_cents"] for ln in lines) == 0
    assert ex.client("planner").get(f"/v1/rounds/{round_id}").json()["state"] == "settled"
    for site in SITES:
        assert _spool_state(tmp_path / f"{site}.spool.sqlite") == (0, 0), site

    # A third run meters nothing twice (the spool remembers the metered hours).
    assert _metered_hours(_run_agents(_configs(ex, tmp_path, AFTER))) == 0
    assert query(ex.db_url, sa.select(sa.func.count()).select_from(t.metering_rows)
                 )[0][0] == placed_hours

"""Metering over real HTTP against the exchange stand-in: ended hours metered once (across
cycles and a crash between spooling and sending), unfinished hours left alone, the
simulated replay source (seeded, never negative), the file source, and refused reports."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridbridge.agent.config import EXAMPLE, load_config, parse_config
from gridbridge.agent.errors import AgentConfigError
from gridbridge.agent.metering import PlacementHour, ReplayMeter, ended_hours
from gridbridge.agent.replay import ReplayClock, ReplayGrid
from gridbridge.agent.runner import Agent
from gridbridge.agent.spool import SCHEMA_VERSION, Spool
from gridbridge.exchange.contract import AssignmentOut
from gridbridge.market.source import read_dataset
from tests.agent.standin import ExchangeStandIn
from tests.agent.test_runner import ManualClock
from tests.conftest import BRIDGE_2023, REPO_ROOT

NOW = datetime(2023, 7, 3, 9, 47, tzinfo=UTC)
REPLAY = f"""[metering]
source = "replay"
dataset = "{BRIDGE_2023.as_posix()}"
seed = 7
"""
#: Round R1: KR's b1 on 8 GH200 06:00-12:00 and DE's b1 (same bid id) on 4 GH200 08:00-10:00;
#: round R2 starts after the clock.
ASSIGNMENTS: list[dict[str, object]] = [
    {"round_id": "R1", "member": "KR", "bid_id": "b1", "gpu_type": "GH200", "gpus": 8,
     "start_utc": "2023-07-03T06:00Z", "end_utc": "2023-07-03T12:00Z"},
    {"round_id": "R1", "member": "DE", "bid_id": "b1", "gpu_type": "GH200", "gpus": 4,
     "start_utc": "2023-07-03T08:00Z", "end_utc": "2023-07-03T10:00Z"},
    {"round_id": "R2", "member": "KR", "bid_id": "b2", "gpu_type": "GH200", "gpus": 2,
     "start_utc": "2023-07-03T12:00Z", "end_utc": "2023-07-03T14:00Z"},
]


def agent_for(path: Path, clock: Callable[[], datetime]) -> Agent:
    return Agent.from_config(load_config(path), clock=clock, sleep=lambda s: None)


def metered_rows(standin: ExchangeStandIn) -> list[tuple[str, str, str, int]]:
    return sorted((r.round_id, row.member, row.bid_id, row.hour_utc.hour)
                  for r in standin.metering.values() for row in r.rows)


@pytest.fixture
def exchange(standin: ExchangeStandIn) -> ExchangeStandIn:
    standin.assignments = [dict(a) for a in ASSIGNMENTS]
    return standin


def test_ended_hours_are_metered_once_across_cycles(
        exchange: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    site = write_site(url=exchange.url, metering=REPLAY)
    clock = ManualClock(NOW)
    with agent_for(site, clock) as agent:
        first = agent.cycle()
        assert first.metering is not None and first.metering.error is None
        assert first.metering.rows == 4 and len(first.metering.reports) == 1
        assert first.metering.reports[0].startswith("GB-BRISTOL-1-20230703T094700Z-sim")
        assert first.drain is not None and first.drain.stored == 2  # telemetry + metering
        assert metered_rows(exchange) == [("R1", "DE", "b1", 8), ("R1", "KR", "b1", 6),
                                          ("R1", "KR", "b1", 7), ("R1", "KR", "b1", 8)]
        again = agent.cycle()  # same clock: nothing new has ended
        assert again.metering is not None and again.metering.reports == []
        clock.advance()  # 10:47: the 09:00 hours have ended, 10:00 and R2 have not
        second = agent.cycle()
        assert second.metering is not None and second.metering.rows == 2
    assert len(exchange.metering) == 2 and len(exchange.metering_posts) == 2
    assert metered_rows(exchange) == [
        ("R1", "DE", "b1", 8), ("R1", "DE", "b1", 9), ("R1", "KR", "b1", 6),
        ("R1", "KR", "b1", 7), ("R1", "KR", "b1", 8), ("R1", "KR", "b1", 9)]
    # Simulated values: 8 GH200 x 1.0 kW x PUE 1.56 x 1 h, noise 3 %; intensity of the grid.
    grid = read_dataset(BRIDGE_2023).grid
    for report in exchange.metering.values():
        for row in report.rows:
            gpus = 8 if row.member == "KR" else 4
            assert row.energy_kwh == pytest.approx(gpus * 1.0 * 1.56, rel=0.15)
            truth = grid.filter((grid["zone"] == "GB") & (grid["hour_utc"] == row.hour_utc))
            assert row.carbon_g_per_kwh == pytest.approx(
                truth["carbon_lifecycle_g_per_kwh"][0], rel=0.10)


def test_hours_the_exchange_already_holds_are_not_metered_again(
        exchange: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    # A fresh spool (the agent's disk was replaced) on a site whose 06:00 and 07:00 hours of
    # KR's b1 the exchange already holds: only the other ended hours are metered.
    exchange.assignments[0] = {**ASSIGNMENTS[0], "round_state": "settled",
                               "metered_hours_utc": ["2023-07-03T06:00Z", "2023-07-03T07:00Z"]}
    site = write_site(url=exchange.url, metering=REPLAY)
    with agent_for(site, ManualClock(NOW)) as agent:
        done = agent.cycle()
    assert done.metering is not None and done.metering.rows == 2
    assert metered_rows(exchange) == [("R1", "DE", "b1", 8), ("R1", "KR", "b1", 8)]


CRASH = """
import os, sys
from datetime import UTC, datetime
import gridbridge.agent.runner as runner
from gridbridge.agent.config import load_config
runner.drain = lambda *a, **k: os._exit(3)  # killed after spooling, before any POST
agent = runner.Agent.from_config(load_config(__import__("pathlib").Path(sys.argv[1])),
                                 clock=lambda: datetime(2023, 7, 3, 9, 47, tzinfo=UTC))
agent.cycle()
"""


def test_a_crash_between_spooling_and_sending_delivers_once_after_restart(
        exchange: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    site = write_site(url=exchange.url, metering=REPLAY)
    done = subprocess.run([sys.executable, "-c", CRASH, str(site)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert exchange.assignment_gets == 1 and not exchange.metering_posts
    with Spool.open(load_config(site).spool) as spool:
        kinds = sorted(e.kind for e in spool.pending())
        assert kinds == ["metering", "telemetry"]
        (spooled,) = [e.report_id for e in spool.pending() if e.kind == "metering"]
    with agent_for(site, ManualClock(NOW)) as agent:  # the restart
        result = agent.cycle()
        assert result.metering is not None and result.metering.reports == []  # not re-metered
        assert result.drain is not None and result.drain.remaining == 0
        agent.cycle()
    assert list(exchange.metering) == [spooled] and exchange.metering_posts == [spooled]
    assert len(metered_rows(exchange)) == 4


def test_refused_metering_is_dead_lettered_and_not_re_metered(
        exchange: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    exchange.uncleared = {"R1"}
    site = write_site(url=exchange.url, metering=REPLAY)
    with agent_for(site, ManualClock(NOW)) as agent:
        result = agent.cycle()
        assert result.drain is not None and len(result.drain.dead_lettered) == 1
        assert result.drain.dead_lettered == result.metering.reports  # type: ignore[union-attr]
        (letter,) = agent.spool.dead_letters()
        assert (letter.kind, letter.status_code) == ("metering", 409)
        assert letter.path == "/v1/sites/GB-BRISTOL-1/metering"
        again = agent.cycle()
        assert again.metering is not None and again.metering.reports == []
    assert exchange.metering == {} and len(exchange.metering_posts) == 1


def test_a_failed_assignments_fetch_is_logged_and_the_cycle_goes_on(
        exchange: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    site = write_site(url=exchange.url, metering=REPLAY)
    exchange.fail_with = 503
    with agent_for(site, ManualClock(NOW)) as agent:
        result = agent.cycle()
        assert result.report_id is not None  # telemetry was spooled regardless
        assert result.metering is not None and "HTTP 503" in (result.metering.error or "")
        exchange.fail_with = None
        result = agent.cycle()
        assert result.metering is not None and result.metering.rows == 4
    assert len(exchange.stored) == 2 and len(metered_rows(exchange)) == 4


def test_without_a_metering_table_no_assignments_are_fetched(
        exchange: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    with agent_for(write_site(url=exchange.url), ManualClock(NOW)) as agent:
        assert agent.cycle().metering is None
    assert exchange.assignment_gets == 0


def test_only_ended_hours_count() -> None:
    (a,) = [AssignmentOut.model_validate(ASSIGNMENTS[0])]
    at = datetime(2023, 7, 3, 9, 0, tzinfo=UTC)  # 08:00-09:00 ends exactly now
    assert [h.hour.hour for h in ended_hours([a], at)] == [6, 7, 8]
    assert ended_hours([a], datetime(2023, 7, 3, 6, 59, tzinfo=UTC)) == []
    assert len(ended_hours([a], datetime(2024, 1, 1, tzinfo=UTC))) == 6  # never past the end


def _hours(n: int) -> list[PlacementHour]:
    start = datetime(2023, 7, 3, tzinfo=UTC).timestamp()
    return [PlacementHour("R1", "KR", f"b{i % 3}", "GH200", 8,
                          datetime.fromtimestamp(start + 3600 * i, UTC)) for i in range(n)]


def test_replay_noise_is_seeded_and_never_negative() -> None:
    grid = ReplayGrid(BRIDGE_2023)

    def meter(seed: int, noise: float = 0.03) -> ReplayMeter:
        return ReplayMeter(grid, site_id="GB-BRISTOL-1", zone="GB", signal="lifecycle",
                           clock=ReplayClock(), seed=seed, energy_noise=noise,
                           carbon_noise=noise)

    hours = _hours(200)
    one, same = meter(1).rows(hours), meter(1).rows(list(reversed(hours)))
    assert one == same  # per-hour generators: order does not matter
    assert meter(2).rows(hours) != one
    energies = [r.energy_kwh for r in one.values()]
    assert min(energies) > 0 and abs(sum(energies) / len(energies) / (8 * 1.56) - 1) < 0.02
    wild = meter(1, noise=1.0).rows(hours)  # sd 100 %: many draws below 0, clipped
    values = [r.energy_kwh for r in wild.values()] + [r.carbon_g_per_kwh or 0.0
                                                      for r in wild.values()]
    assert min(values) == 0.0 and all(v >= 0 for v in values)


def test_the_file_source(exchange: ExchangeStandIn, write_site: Callable[..., Path],
                         tmp_path: Path) -> None:
    csv = tmp_path / "metering.csv"
    site = write_site(url=exchange.url, metering='[metering]\nsource = "file"\n'
                                                 f'path = "{csv.as_posix()}"\n')
    clock = ManualClock(NOW)
    with agent_for(site, clock) as agent:
        first = agent.cycle()  # no file yet: every ended hour waits
        assert first.metering is not None and (first.metering.rows, first.metering.waiting) \
            == (0, 4)
        csv.write_text("bid_id,hour_utc,energy_kwh,member,carbon_g_per_kwh\n"
                       "b1,2023-07-03T06:00Z,12.5,KR,201.5\n"
                       "b1,2023-07-03T07:00Z,12.25,KR,\n"
                       "b1,2023-07-03T08:00Z,6.0,DE,190\n"
                       "b9,2023-07-03T08:00Z,1.0,KR,\n", encoding="utf-8")  # not placed
        second = agent.cycle()
        assert second.metering is not None and (second.metering.rows,
                                                second.metering.waiting) == (3, 1)
        assert second.metering.reports[0].startswith("GB-BRISTOL-1-20230703T094700Z-met")
        with csv.open("a", encoding="utf-8") as f:
            f.write("b1,2023-07-03T08:00Z,12.0,KR,180\n")
        third = agent.cycle()
        assert third.metering is not None and (third.metering.rows,
                                               third.metering.waiting) == (1, 0)
        csv.write_text("bid_id,hour_utc,energy_kwh\nb1,2023-07-03T06:30Z,1\n", encoding="utf-8")
        clock.advance()
        bad = agent.cycle()
        assert bad.metering is not None and "line 2" in (bad.metering.error or "")
    rows = {(row.member, row.hour_utc.hour): (row.energy_kwh, row.carbon_g_per_kwh)
            for r in exchange.metering.values() for row in r.rows}
    assert rows == {("KR", 6): (12.5, 201.5), ("KR", 7): (12.25, None),
                    ("DE", 8): (6.0, 190.0), ("KR", 8): (12.0, 180.0)}


def test_the_example_meters_by_replay_and_bad_tables_are_refused() -> None:
    env = {"GRIDBRIDGE_SITE_TOKEN": "tok", "ELECTRICITYMAPS_TOKEN": "em-key"}
    config = parse_config(tomllib.loads(EXAMPLE), base=Path("/etc/gridbridge"), env=env)
    assert config.metering.source == "replay"
    assert config.metering.options["seed"] == 1
    assert config.metering.options["energy_noise"] == 0.03
    data = tomllib.loads(EXAMPLE)
    data["metering"] = {"source": "meter", "sed": 1}
    with pytest.raises(AgentConfigError) as caught:
        parse_config(data, base=Path("/etc/gridbridge"), env=env)
    assert "metering.source" in str(caught.value) and "metering.sed" in str(caught.value)
    data["metering"] = {"source": "file"}
    with pytest.raises(AgentConfigError, match=r"metering\.path"):
        parse_config(data, base=Path("/etc/gridbridge"), env=env)


def test_a_version_1_spool_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    Spool.open(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE metered")
    db.execute("UPDATE spool_meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with Spool.open(path) as spool:
        spool.put_metering("m1", "/v1/sites/S/metering", "{}", [("R", "KR", "b", "h")])
        assert spool.metered(["R"]) == {("R", "KR", "b", "h")}
    version = sqlite3.connect(path).execute(
        "SELECT value FROM spool_meta WHERE key = 'schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION == 2

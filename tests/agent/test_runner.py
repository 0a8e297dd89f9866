"""The agent end to end over real HTTP against the exchange stand-in: ``--once``, an outage
and its backlog, exit statuses, and a real agent process stopped by SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridbridge.agent.config import load_config
from gridbridge.agent.runner import Agent, CycleResult
from gridbridge.agent.spool import Spool
from gridbridge.market.source import read_dataset
from tests.agent.standin import ExchangeStandIn
from tests.conftest import BRIDGE_2023, REPO_ROOT, run_cli


class ManualClock:
    """A clock the test moves on by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: int = 1) -> None:
        self.now += timedelta(hours=hours)


def agent_for(path: Path, clock: Callable[[], datetime]) -> Agent:
    return Agent.from_config(load_config(path), clock=clock, sleep=lambda s: None)


def test_one_cycle_reports_the_replayed_grid(standin: ExchangeStandIn,
                                             write_site: Callable[..., Path]) -> None:
    site = write_site(url=standin.url)
    with agent_for(site, ManualClock(datetime(2023, 7, 3, 9, 47, tzinfo=UTC))) as agent:
        result = agent.run(once=True)
    assert result is not None and result.error is None and result.hours == 24
    assert result.drain is not None and (result.drain.stored, result.drain.remaining) == (1, 0)
    (report,) = standin.stored.values()
    assert report.report_id == result.report_id
    assert report.report_id.startswith("GB-BRISTOL-1-20230703T094700Z-")
    assert (report.zone, report.signal, report.provider) == ("GB", "lifecycle",
                                                             "replay:bridge-2023")
    grid = read_dataset(BRIDGE_2023).grid
    first = report.hours[0]
    assert first.hour_utc == datetime(2023, 7, 3, 10, tzinfo=UTC)
    truth = grid.filter((grid["zone"] == "GB") & (grid["hour_utc"] == first.hour_utc)).row(
        0, named=True)
    assert first.carbon_g_per_kwh == truth["carbon_lifecycle_g_per_kwh"]
    assert first.price_eur_per_mwh == truth["price_eur_per_mwh"]
    assert first.gpus_free == {"GH200": 1088}


def test_an_outage_builds_a_backlog_that_is_delivered_once_in_order(
        standin: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    site = write_site(url=standin.url)
    clock = ManualClock(datetime(2023, 7, 3, 9, 47, tzinfo=UTC))

    def next_cycle() -> CycleResult:
        result = agent.cycle()
        clock.advance()
        return result

    with agent_for(site, clock) as agent:
        first = next_cycle()
        standin.stop()  # the exchange goes down for a while
        during = [next_cycle() for _ in range(3)]
        assert [r.drain.remaining for r in during if r.drain] == [1, 2, 3]
        assert all("ConnectError" in (r.drain.stopped_by or "") for r in during if r.drain)
        standin.start()  # back, on the same port
        after = next_cycle()
        assert after.drain is not None and (after.drain.stored, after.drain.remaining) == (4, 0)
    expected = [first.report_id, *(r.report_id for r in during), after.report_id]
    assert standin.order == expected
    assert len(standin.stored) == 5 and len(set(standin.posts)) == 5
    assert [standin.stored[r].measured_at_utc.hour for r in expected] == [9, 10, 11, 12, 13]


def test_cli_once_exit_statuses(standin: ExchangeStandIn, write_site: Callable[..., Path],
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = write_site(url=standin.url, extra_agent='clock_start_utc = "2023-07-03T10:00Z"')
    code, out, err = run_cli(["agent", "run", "--config", str(site), "--once"], capsys)
    assert code == 0, err
    assert "(24 hours, carbon replay:bridge-2023) delivered; 1 stored" in out
    standin.stop()
    code, out, err = run_cli(["agent", "run", "--config", str(site), "--once"], capsys)
    assert code == 6
    assert "1 report(s) still wait in the spool" in err and "they are sent on the next" in err
    standin.start()
    code, out, err = run_cli(["agent", "run", "--config", str(site), "--once"], capsys)
    assert code == 0 and "2 stored" in out and len(standin.stored) == 3
    code, out, _ = run_cli(["agent", "spool", "--config", str(site)], capsys)
    assert code == 0 and "0 waiting, 0 refused" in out
    # No report can be built (the zone is not in the data): exit 7, backlog still drained.
    dataset = BRIDGE_2023.as_posix()
    broken = write_site(url=standin.url, zone="FR", signal="direct",
                        extra_agent='clock_start_utc = "2023-07-03T10:00Z"',
                        price=f'[[price]]\nprovider = "replay"\ndataset = "{dataset}"\n'
                              '[[price]]\nprovider = "fixed"\neur_per_mwh = 90.0\n')
    code, _, err = run_cli(["agent", "run", "--config", str(broken), "--once"], capsys)
    assert code == 7
    assert "no report was built: no carbon provider answered" in err
    assert "zone FR is not in" in err


def test_refused_reports_are_listed_by_the_spool_command(
        standin: ExchangeStandIn, write_site: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    site = write_site(url=standin.url, extra_agent='clock_start_utc = "2023-07-03T10:00Z"')
    clock = ManualClock(datetime(2023, 7, 3, 9, 47, tzinfo=UTC))
    with agent_for(site, clock) as agent:
        report = agent.read()
        agent.spool.put(report.report_id, "telemetry", "/v1/sites/GB-BRISTOL-1/telemetry",
                        report.model_dump_json())
        standin.refuse[report.report_id] = 409
        result = agent.cycle()
    assert result.drain is not None and result.drain.dead_lettered == [report.report_id]
    code, out, _ = run_cli(["agent", "spool", "--config", str(site)], capsys)
    assert code == 0 and "0 waiting, 1 refused" in out and "409" in out
    # With --once, a refused report is exit 8 (the next report is delivered regardless).
    standin.refuse = {}
    code, _, err = run_cli(["agent", "run", "--config", str(site), "--once"], capsys)
    assert code == 0, err
    standin.refuse_every = 422
    code, _, err = run_cli(["agent", "run", "--config", str(site), "--once"], capsys)
    assert code == 8 and "the exchange refused 1 report(s)" in err
    with Spool.open(load_config(site).spool) as spool:
        assert spool.dead_letters()[0].report_id == report.report_id


def test_a_real_agent_process_stops_cleanly_on_sigterm(
        standin: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    site = write_site(url=standin.url, extra_agent='clock_start_utc = "2023-07-03T10:00Z"')
    process = subprocess.Popen([sys.executable, "-m", "gridbridge", "agent", "run", "--config",
                                str(site)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not standin.stored and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert standin.stored, process.stderr.read() if process.poll() is not None else ""
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "SIGTERM: stopping after the current step" in err
    assert "agent stopped; 0 report(s) wait in the spool" in out
    assert len(standin.posts) == len(standin.stored)  # nothing half-sent


def test_replays_on_a_real_clock_start_together(standin: ExchangeStandIn,
                                                write_site: Callable[..., Path]) -> None:
    dataset = BRIDGE_2023.as_posix()
    start = 'start_utc = "2023-07-03T00:00Z"\n'
    site = write_site(url=standin.url,
                      carbon=f'[[carbon]]\nprovider = "replay"\ndataset = "{dataset}"\n{start}',
                      price=f'[[price]]\nprovider = "replay"\ndataset = "{dataset}"\n{start}')
    with agent_for(site, ManualClock(datetime(2026, 1, 5, 8, 10, tzinfo=UTC))) as agent:
        agent.run(once=True)
    (report,) = standin.stored.values()
    assert report.hours[0].hour_utc == datetime(2026, 1, 5, 9, tzinfo=UTC)  # real stamps
    grid = read_dataset(BRIDGE_2023).grid
    replayed = grid.filter((grid["zone"] == "GB")
                           & (grid["hour_utc"] == datetime(2023, 7, 3, tzinfo=UTC))).row(
        0, named=True)
    assert report.hours[0].carbon_g_per_kwh == replayed["carbon_lifecycle_g_per_kwh"]
    assert report.hours[0].price_eur_per_mwh == replayed["price_eur_per_mwh"]


def test_a_reading_the_contract_refuses_skips_the_cycle_only(
        standin: ExchangeStandIn, write_site: Callable[..., Path]) -> None:
    types = ", ".join(f"T{i} = 1" for i in range(17))  # the contract allows 16 GPU types
    site = write_site(url=standin.url,
                      inventory=f'[inventory]\nsource = "static"\ngpus = {{ {types} }}\n')
    with agent_for(site, ManualClock(datetime(2023, 7, 3, 9, 47, tzinfo=UTC))) as agent:
        result = agent.cycle()
    assert result.report_id is None and "gpus_free" in (result.error or "")
    assert result.drain is not None and result.drain.remaining == 0

"""The spool: durable before sending, oldest first, removed only when acknowledged, refused
reports dead-lettered, and a killed agent neither loses nor duplicates a report."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gridbridge.agent.retry import Http, RetryPolicy
from gridbridge.agent.spool import Spool
from gridbridge.agent.uplink import ExchangeUplink, drain, telemetry_path
from gridbridge.exchange.contract import TelemetryHour, TelemetryReport
from tests.agent.standin import ExchangeStandIn
from tests.conftest import REPO_ROOT

PATH = telemetry_path("GB-BRISTOL-1")


def body(report_id: str, gpus: int = 8) -> str:
    hour = datetime(2023, 7, 3, 14, tzinfo=UTC)
    return TelemetryReport(
        report_id=report_id, zone="GB", signal="lifecycle", provider="replay:bridge-2023",
        measured_at_utc=hour - timedelta(minutes=13),
        hours=[TelemetryHour(hour_utc=hour + timedelta(hours=i), gpus_free={"GH200": gpus},
                             carbon_g_per_kwh=180.0 + i, price_eur_per_mwh=-5.0 + i)
               for i in range(3)]).model_dump_json()


def uplink(url: str, token: str = "site-token") -> ExchangeUplink:
    return ExchangeUplink(Http(httpx.Client(timeout=5), RetryPolicy(attempts=2, base_s=0.01)),
                          base_url=url, token=token)


def test_put_ack_and_pending_order(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "s.sqlite") as spool:
        for rid in ("r-1", "r-2", "r-3"):
            spool.put(rid, "telemetry", PATH, body(rid))
        spool.put("r-2", "telemetry", PATH, body("r-2", gpus=99))  # same id: kept as first
        assert [e.report_id for e in spool.pending()] == ["r-1", "r-2", "r-3"]
        assert '"GH200":8' in spool.pending()[1].body
        spool.ack("r-2")
        spool.record_failure("r-1", "timeout")
        pending = spool.pending()
        assert [(e.report_id, e.attempts, e.last_error) for e in pending] == [
            ("r-1", 1, "timeout"), ("r-3", 0, None)]
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_drain_delivers_oldest_first_and_dead_letters_refused_reports(
        tmp_path: Path, standin: ExchangeStandIn) -> None:
    standin.refuse["r-2"] = 422
    with Spool.open(tmp_path / "s.sqlite") as spool:
        for rid in ("r-1", "r-2", "r-3"):
            spool.put(rid, "telemetry", PATH, body(rid))
        result = drain(spool, uplink(standin.url))
        assert (result.stored, result.duplicates, result.remaining) == (2, 0, 0)
        assert result.dead_lettered == ["r-2"] and result.stopped_by is None
        assert standin.order == ["r-1", "r-3"]
        assert standin.posts == ["r-1", "r-2", "r-3"]  # the refused one was sent once only
        (dead,) = spool.dead_letters()
        assert (dead.report_id, dead.status_code, dead.attempts) == ("r-2", 422, 1)
        assert "closed window" in dead.reason and dead.body == body("r-2")
        # A refused id spooled again is not resurrected.
        spool.put("r-2", "telemetry", PATH, body("r-2"))
        assert spool.count() == 0


def test_a_wrong_token_holds_the_backlog_instead_of_dead_lettering(
        tmp_path: Path, standin: ExchangeStandIn) -> None:
    with Spool.open(tmp_path / "s.sqlite") as spool:
        spool.put("r-1", "telemetry", PATH, body("r-1"))
        spool.put("r-2", "telemetry", PATH, body("r-2"))
        result = drain(spool, uplink(standin.url, token="wrong"))
        assert result.remaining == 2 and not result.dead_lettered
        assert "HTTP 401" in (result.stopped_by or "")
        assert standin.posts == []  # refused before the body was read
        assert drain(spool, uplink(standin.url)).stored == 2


def test_an_outage_stops_the_drain_and_keeps_the_order(tmp_path: Path,
                                                       standin: ExchangeStandIn) -> None:
    with Spool.open(tmp_path / "s.sqlite") as spool:
        spool.put("r-1", "telemetry", PATH, body("r-1"))
        spool.put("r-2", "telemetry", PATH, body("r-2"))
        standin.fail_with = 503
        result = drain(spool, uplink(standin.url))
        assert result.remaining == 2 and "HTTP 503" in (result.stopped_by or "")
        assert spool.pending()[0].attempts == 1 and spool.pending()[1].attempts == 0
        standin.fail_with = None
        assert drain(spool, uplink(standin.url)).stored == 2
        assert standin.order == ["r-1", "r-2"]


CRASH = textwrap.dedent("""
    import os, sys
    import httpx
    from pathlib import Path
    from gridbridge.agent.retry import Http, RetryPolicy
    from gridbridge.agent.spool import Spool
    from gridbridge.agent.uplink import ExchangeUplink, drain
    from tests.agent.test_spool import PATH, body

    spool_path, url, when = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    spool = Spool.open(spool_path)
    spool.put("r-crash", "telemetry", PATH, body("r-crash"))
    if when == "before-send":
        os._exit(9)  # killed right after spooling: nothing sent
    # Killed after the exchange answered, before the acknowledgement reached the spool.
    Spool.ack = lambda self, report_id: os._exit(9)
    drain(spool, ExchangeUplink(Http(httpx.Client(), RetryPolicy(attempts=1)),
                                base_url=url, token="site-token"))
    os._exit(0)  # not reached
""")


def crash(tmp_path: Path, url: str, when: str) -> None:
    done = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path / "s.sqlite"), url, when],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr


def test_killed_before_sending_the_report_is_delivered_after_restart(
        tmp_path: Path, standin: ExchangeStandIn) -> None:
    crash(tmp_path, standin.url, "before-send")
    assert standin.posts == []
    with Spool.open(tmp_path / "s.sqlite") as spool:  # the restarted agent
        result = drain(spool, uplink(standin.url))
    assert (result.stored, result.remaining) == (1, 0)
    assert standin.order == ["r-crash"]


def test_killed_before_the_ack_the_report_is_stored_once(tmp_path: Path,
                                                         standin: ExchangeStandIn) -> None:
    crash(tmp_path, standin.url, "after-send")
    assert standin.order == ["r-crash"]  # the exchange stored it before the agent died
    with Spool.open(tmp_path / "s.sqlite") as spool:
        assert [e.report_id for e in spool.pending()] == ["r-crash"]  # not acknowledged
        result = drain(spool, uplink(standin.url))
        assert (result.stored, result.duplicates, result.remaining) == (0, 1, 0)
    # Sent twice, stored once: the exchange recognised the report id.
    assert standin.posts == ["r-crash", "r-crash"] and list(standin.stored) == ["r-crash"]

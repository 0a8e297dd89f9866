"""PostgreSQL restarted under load: the exchange's database server is stopped and started
again (twice) while agents report. Meanwhile the exchange answers 503; afterwards it
reconnects by itself (pooled connections are tested before use), the agents, backing off and
redelivering as the site agent's spool does, get every report acknowledged, and each is
stored exactly once.

The server restarted is a private one the test starts (``initdb`` in a temporary folder, on a
free port of 127.0.0.1, Debian's PostgreSQL binaries; as the ``postgres`` user when the tests
run as root), so restarting it disturbs nothing else. Without those binaries the test skips
with a visible reason, and fails under ``GRIDBRIDGE_REQUIRE_ALL=1`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridbridge.demo.processes import free_port
from gridbridge.exchange import schema as t
from tests.conftest import require_part
from tests.exchange.server import RedeliveringAgents, Server, init_exchange, query

AGENTS, REPORTS = 4, 15


def _bin_folder() -> Path | None:
    """The newest Debian PostgreSQL binaries (/usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


def _runs_as() -> list[str] | None:
    """The prefix that runs a command as a user PostgreSQL accepts (it refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--"] if runuser else None


class PrivatePostgres:
    """A PostgreSQL server of its own in ``folder``, on ``port`` of 127.0.0.1."""

    def __init__(self, binaries: Path, prefix: list[str], folder: Path) -> None:
        self.binaries, self.prefix, self.folder = binaries, prefix, folder
        self.data, self.log = folder / "data", folder / "postgres.log"
        self.port = free_port("127.0.0.1")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.binaries / tool), *args], check=True,
                       capture_output=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "gridbridge",
                  "--no-sync")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        """A fast shutdown, as a restart by the operator: open connections are cut."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://gridbridge@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    binaries, prefix = _bin_folder(), _runs_as()
    require_part(binaries is not None and prefix is not None, "PostgreSQL's server binaries "
                 "(initdb, pg_ctl) and a user to run them",
                 "install Debian's postgresql package, as .ci/run does")
    assert binaries is not None and prefix is not None
    # Not under pytest's tmp_path: the postgres user must reach the folder.
    folder = Path(tempfile.mkdtemp(prefix="gbt-pg-"))
    folder.chmod(0o755)
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    server = PrivatePostgres(binaries, prefix, folder)
    try:
        server.init()
        server.start()
        engine = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE exchange"))
        engine.dispose()
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_postgresql_restarted_under_load_loses_and_duplicates_nothing(
        tmp_path: Path, postgres: PrivatePostgres) -> None:
    url = postgres.url("exchange")
    tokens = init_exchange(url)
    server = Server(url, tmp_path / "server.log").start()
    agents = RedeliveringAgents(server, tokens["site"])
    try:
        threads = agents.start(AGENTS, REPORTS, pause_s=0.05)  # on a clock, not flat out
        for _ in range(2):  # two restarts while the agents report
            time.sleep(0.5)
            postgres.stop()
            time.sleep(1.0)  # down: the exchange answers 503, the agents back off
            postgres.start()
        for thread in threads:
            thread.join(timeout=180)
        with server.client(None) as client:
            assert client.get("/healthz").status_code == 200  # reconnected by itself
    finally:
        server.stop()
    assert not agents.refused, agents.refused
    assert agents.unavailable, "no request met the restart: weak test"
    # The exchange says the database is unavailable (503, or the connection went with the
    # server's answer); never a 500.
    assert set(agents.unavailable) <= {503, "no answer"}, agents.unavailable
    assert len(agents.acked) == AGENTS * REPORTS
    stored = query(url, sa.select(t.telemetry_reports.c.report_id, sa.func.count())
                   .group_by(t.telemetry_reports.c.report_id))
    assert dict(stored) == dict.fromkeys(agents.acked, 1)  # every report once, none lost

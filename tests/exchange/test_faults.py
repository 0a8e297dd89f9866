"""Faults against real servers, on both backends: a read-only database (503, nothing
acknowledged that was not stored), PostgreSQL dropping every connection under load (the
exchange reconnects, clients that back off and re-deliver lose and duplicate nothing), and
site clocks that are off."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from tests.databases import Databases, pg_admin_url
from tests.exchange.server import (
    SITE,
    RedeliveringAgents,
    Server,
    counts,
    init_exchange,
    query,
    stored_forecasts,
    telemetry,
)

URL = f"/v1/sites/{SITE}/telemetry"


def _read_only(url: str, on: bool) -> str:
    """The URL of ``url``'s database opened read-only (SQLite: a read-only URI), or, on
    PostgreSQL, the same URL with the database set read-only (``on``) or writable again."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        return f"sqlite:///file:{path}?mode=ro&uri=true" if on else url
    admin = pg_admin_url()
    assert admin is not None
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    name = sa.make_url(url).database
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only '
                                 f"= {'on' if on else 'off'}"))
    finally:
        engine.dispose()
    return url


def test_a_read_only_database_answers_503_and_acknowledges_nothing(
        tmp_path: Path, databases: Databases) -> None:
    url = databases.fresh("readonly")
    tokens = init_exchange(url)
    before = counts(url)
    server = Server(_read_only(url, True), tmp_path / "server.log").start()
    try:
        with server.client(tokens["site"]) as client:
            refused = client.post(URL, json=telemetry("ro-1"))
            assert refused.status_code == 503, refused.text
            detail = refused.json()["detail"]
            assert "read-only" in detail or "readonly" in detail, detail
            assert "nothing was written" in detail and "fix" in detail
            assert client.get("/v1/registry").status_code == 200  # reads still work
    finally:
        server.stop()
    assert counts(url) == before  # nothing stored, so nothing was acknowledged

    server = Server(_read_only(url, False), tmp_path / "server.log").start()
    try:
        with server.client(tokens["site"]) as client:
            assert client.post(URL, json=telemetry("ro-1")).status_code == 201
    finally:
        server.stop()
    assert counts(url)["telemetry_reports"] == 1


def _terminate_connections(url: str) -> int:
    """Drop every connection to ``url``'s database, as a server restart does; how many."""
    admin = pg_admin_url()
    assert admin is not None
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(conn.execute(sa.text(
                # Only client connections: autovacuum workers on the database belong to
                # the bootstrap superuser, which the tests' role may not terminate.
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' AND usename = current_user"),
                {"name": sa.make_url(url).database}).all())
    finally:
        engine.dispose()


def test_dropped_postgresql_connections_lose_and_duplicate_nothing(
        tmp_path: Path, postgres_databases: Databases) -> None:
    url = postgres_databases.fresh("drops")
    tokens = init_exchange(url)
    server = Server(url, tmp_path / "server.log").start()
    agents = RedeliveringAgents(server, tokens["site"], give_up_s=30)
    try:
        threads = agents.start(4, 15)
        dropped = 0
        for _ in range(5):  # five "restarts" while the agents report
            time.sleep(0.4)
            dropped += _terminate_connections(url)
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()
    assert not agents.refused, agents.refused
    assert dropped > 0, "no connection was dropped: weak test"
    assert len(agents.acked) == 4 * 15
    stored = query(url, sa.select(t.telemetry_reports.c.report_id, sa.func.count())
                   .group_by(t.telemetry_reports.c.report_id))
    assert dict(stored) == dict.fromkeys(agents.acked, 1)  # every report once, none lost
    # Whole reports only: 48 hours, each with its site's 2 GPU types.
    assert all(len(rows[0]) == 48 and all(len(h.gpus_free) == 2 for h in rows[0].values())
               for rows in stored_forecasts(url).values())


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_site_clock_ten_minutes_off_still_reports_into_the_right_hours(
        tmp_path: Path, databases: Databases, minutes: int) -> None:
    url = databases.fresh("clock")
    tokens = init_exchange(url)
    server = Server(url, tmp_path / "server.log").start()
    try:
        site_now = datetime.now(UTC) + timedelta(minutes=minutes)
        first = site_now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        body = telemetry("skewed", hours=6, start=first)
        body["measured_at_utc"] = site_now.isoformat()
        with server.client(tokens["site"]) as client:
            assert client.post(URL, json=body).status_code == 201
            # Two hours ahead is a broken clock: refused, with the reason and the fix.
            body = telemetry("broken", hours=6, start=first + timedelta(hours=2))
            body["measured_at_utc"] = (site_now + timedelta(hours=2)).isoformat()
            refused = client.post(URL, json=body)
        assert refused.status_code == 422, refused.text
        assert "measured_at_utc" in refused.text and "NTP" in refused.text
    finally:
        server.stop()
    [[hours]] = stored_forecasts(url).values()  # only the first report
    assert list(hours) == [(first + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%MZ")
                           for h in range(6)]

"""``gridbridge exchange init`` upgrades an exchange written by older GridBridge in place,
keeping its rows, on both backends; ``serve`` refuses to run on one until it has.

The old databases are made from a current one by undoing each version's changes (the
columns it added, the tables it replaced), as that version's code left them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.snapshot import outlook_files
from gridbridge.exchange.storage import ExchangeStore
from tests.conftest import BRIDGE_2023, run_cli
from tests.databases import Databases
from tests.exchange.server import SITE, SITE_TYPES, SITE_ZONE, query, stored_forecasts

# The per-hour tables of version 2, as its code created them.
_V2_TABLES = (
    "CREATE TABLE exchange_capacity_forecast (report_pk BIGINT NOT NULL REFERENCES "
    "exchange_telemetry_reports (id), gpu_type VARCHAR NOT NULL, hour_utc VARCHAR NOT NULL, "
    "site_id VARCHAR NOT NULL, gpus_free INTEGER NOT NULL, "
    "PRIMARY KEY (report_pk, gpu_type, hour_utc))",
    "CREATE TABLE exchange_grid_forecast (report_pk BIGINT NOT NULL REFERENCES "
    "exchange_telemetry_reports (id), hour_utc VARCHAR NOT NULL, zone VARCHAR NOT NULL, "
    "signal VARCHAR NOT NULL, provider VARCHAR NOT NULL, carbon_g_per_kwh FLOAT NOT NULL, "
    "price_eur_per_mwh FLOAT NOT NULL, PRIMARY KEY (report_pk, hour_utc))",
)


@pytest.fixture
def db(databases: Databases, capsys: pytest.CaptureFixture[str]) -> str:
    url = databases.fresh("upgrade")
    code, _, err = run_cli(["exchange", "init", "--db", url, "--from", str(BRIDGE_2023)],
                           capsys)
    assert code == 0, err
    return url


def _back_to(db: str, version: int) -> None:
    """Make ``db`` (a current exchange with no telemetry) look as ``version``'s code left it."""
    statements = ["DROP INDEX ix_exchange_telemetry_site_end",
                  "DROP INDEX ix_exchange_telemetry_zone_end",
                  *(f"ALTER TABLE exchange_telemetry_reports DROP COLUMN {c}"
                    for c in ("first_hour_utc", "end_hour_utc", "forecast_json")),
                  *_V2_TABLES]
    if version == 1:
        statements += [f"ALTER TABLE {table} DROP COLUMN {column}" for table, column in (
            ("exchange_rounds", "time_limit_s"), ("exchange_round_runs", "worker_id"),
            ("exchange_round_runs", "lease_until_utc"), ("exchange_round_runs", "attempts"))]
    statements.append(f"UPDATE schema_version SET version = {version} "
                      "WHERE component = 'exchange'")
    for statement in statements:
        query(db, sa.text(statement))


def _upgrade(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["exchange", "serve", "--db", db], capsys)
    assert code == 6 and "exchange init" in err  # serve does not upgrade behind your back
    code, _, err = run_cli(["exchange", "init", "--db", db, "--from", str(BRIDGE_2023)],
                           capsys)
    assert code == 0, err
    versions = dict(query(db, sa.text("SELECT component, version FROM schema_version")))
    assert versions["exchange"] == t.EXCHANGE_SCHEMA_VERSION == 3


def test_init_upgrades_a_version_1_exchange_and_keeps_its_rows(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _back_to(db, 1)
    query(db, sa.text(
        "INSERT INTO exchange_rounds (round_id, state, window_start_utc, window_end_utc, "
        "carbon_price_eur_per_t, carbon_signal, created_at_utc, created_by, updated_at_utc) "
        "VALUES ('R-1', 'cleared', '2023-07-03T00:00Z', '2023-07-04T00:00Z', 80, 'direct', "
        "'2023-07-01T00:00:00.000Z', 'planner', '2023-07-01T00:00:00.000Z')"))
    query(db, sa.text("INSERT INTO exchange_round_runs (round_id, progress, claimed_at_utc) "
                      "VALUES ('R-1', 'done', '2023-07-01T00:00:00.000Z')"))
    _upgrade(db, capsys)
    [run] = query(db, sa.select(t.round_runs))
    assert (run.round_id, run.progress, run.attempts, run.worker_id) == ("R-1", "done", 1, None)
    [found] = query(db, sa.select(t.rounds.c.round_id, t.rounds.c.time_limit_s))
    assert tuple(found) == ("R-1", None)


def _v2_report(db: str, report_id: str, hours: list[int], free: int, carbon: float) -> None:
    """One telemetry report as version 2 stored it: a report row and per-hour rows, hours of
    2023-07-03 (may have gaps), ``SITE_TYPES[0]`` only in odd hours."""
    query(db, sa.text(
        "INSERT INTO exchange_telemetry_reports (site_id, report_id, body_sha256, "
        "received_at_utc, zone, signal, provider, measured_at_utc, hours) VALUES (:site, :id, "
        "'x', '2023-07-02T00:00:00.000Z', :zone, 'direct', 'csv', '2023-07-02T00:00:00.000Z', "
        ":n)").bindparams(site=SITE, id=report_id, zone=SITE_ZONE, n=len(hours)))
    pk = query(db, sa.text("SELECT id FROM exchange_telemetry_reports WHERE report_id = :id")
               .bindparams(id=report_id))[0][0]
    for h in hours:
        stamp = f"2023-07-03T{h:02d}:00Z"
        query(db, sa.text(
            "INSERT INTO exchange_grid_forecast VALUES (:pk, :hour, :zone, 'direct', 'csv', "
            ":carbon, 90.5)").bindparams(pk=pk, hour=stamp, zone=SITE_ZONE, carbon=carbon))
        for gpu_type in SITE_TYPES[1:] + (SITE_TYPES[:1] if h % 2 else ()):
            query(db, sa.text("INSERT INTO exchange_capacity_forecast VALUES "
                              "(:pk, :type, :hour, :site, :free)").bindparams(
                pk=pk, type=gpu_type, hour=stamp, site=SITE, free=free))


def test_init_upgrades_version_2_telemetry_into_one_row_per_report(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _back_to(db, 2)
    _v2_report(db, "older", list(range(0, 12)), free=3, carbon=100.0)
    _v2_report(db, "newer", [2, 3, 5], free=7, carbon=200.0)  # a gap at hour 4
    _upgrade(db, capsys)
    forecasts = stored_forecasts(db)
    [older], [newer] = forecasts["older"], forecasts["newer"]
    assert list(newer) == ["2023-07-03T02:00Z", "2023-07-03T03:00Z", "2023-07-03T05:00Z"]
    assert dict(newer["2023-07-03T03:00Z"].gpus_free) == dict.fromkeys(SITE_TYPES, 7)
    assert dict(newer["2023-07-03T02:00Z"].gpus_free) == {SITE_TYPES[1]: 7}
    assert len(older) == 12 and older["2023-07-03T11:00Z"].carbon_g_per_kwh == 100.0
    spans = dict((r[0], (r[1], r[2])) for r in query(db, sa.select(
        t.telemetry_reports.c.report_id, t.telemetry_reports.c.first_hour_utc,
        t.telemetry_reports.c.end_hour_utc)))
    assert spans == {"older": ("2023-07-03T00:00Z", "2023-07-03T12:00Z"),
                     "newer": ("2023-07-03T02:00Z", "2023-07-03T06:00Z")}
    # The outlook reads the moved rows: the newer report where it has the hour, else the older.
    with ExchangeStore.open(db) as store, store.read() as conn:
        files = outlook_files(conn, datetime(2023, 7, 3, 1, tzinfo=UTC),
                              datetime(2023, 7, 3, 7, tzinfo=UTC), "direct", 80.0)
    grid = [line.split(",") for line in files["grid.csv"].splitlines()[1:]
            if line.startswith(SITE_ZONE + ",")]
    assert [(hour[11:13], carbon) for _, hour, carbon, *_ in grid] == [
        ("01", "100.0"), ("02", "200.0"), ("03", "200.0"), ("04", "100.0"), ("05", "200.0"),
        ("06", "100.0")]


def test_the_first_upgrade_step_compiles_for_postgresql() -> None:
    sent: list[str] = []
    engine = sa.create_mock_engine("postgresql+psycopg://", lambda *_a, **_k: None)

    class Recorder:
        dialect = engine.dialect

        def execute(self, statement: sa.TextClause) -> None:
            sent.append(str(statement))

    t.UPGRADES[1](Recorder())  # type: ignore[arg-type]
    assert "ALTER TABLE exchange_round_runs ADD COLUMN attempts INTEGER DEFAULT 1 NOT NULL" in sent
    assert "ALTER TABLE exchange_rounds ADD COLUMN time_limit_s FLOAT" in sent

"""``gridbridge exchange init`` and ``token create|list|revoke``, in-process, and the stored
schema: idempotent registry load, hashed tokens, clear errors with their exit status."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gridbridge.exchange import schema as t
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.ledger.store import LEDGER_SCHEMA_VERSION
from tests.conftest import BRIDGE_2023, run_cli
from tests.databases import Databases
from tests.exchange.server import counts, query


@pytest.fixture
def db(databases: Databases) -> str:
    return databases.fresh("cli")


def _init(db: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(["exchange", "init", "--db", db, "--from", str(BRIDGE_2023)],
                             capsys)
    assert code == 0, err
    return out


def _registry(db: str) -> dict[str, list[tuple[object, ...]]]:
    return {table.name: sorted(tuple(r) for r in query(db, sa.select(table)))
            for table in (t.members, t.gpu_types, t.sites, t.pools)}


def test_init_twice_leaves_the_same_registry(db: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = _init(db, capsys)
    assert "5 members, 7 gpu types, 14 sites, 19 pools" in out and "added 45" in out
    first = _registry(db)
    assert {r[0] for r in first["exchange_members"]} == {"CA", "DE", "GB", "KR", "SG"}
    suwon = [r for r in first["exchange_pools"] if r[0] == "KR-SUWON-1"]
    # Pools from sites.csv's gpu_pools, asks from the type's reference ask (gpus.csv).
    assert [(r[1], r[2], r[3]) for r in suwon] == [("A100", 176, 0.5), ("H100", 248, 1.1)]

    out = _init(db, capsys)
    assert "added 0, updated 0, unchanged 45" in out
    assert _registry(db) == first
    versions = query(db, sa.text("SELECT component, version FROM schema_version"))
    # init also creates the ledger's tables: a round's lines are posted with its results.
    assert sorted(tuple(r) for r in versions) == [("exchange", t.EXCHANGE_SCHEMA_VERSION),
                                                  ("ledger", LEDGER_SCHEMA_VERSION)]


def test_init_keeps_asks_sites_have_set(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _init(db, capsys)
    query(db, t.pools.update().where(t.pools.c.site_id == "KR-SUWON-1",
                                     t.pools.c.gpu_type == "H100")
          .values(ask_eur_per_gpu_hour=1.35, ask_updated_at_utc="2023-07-01T00:00:00.000Z"))
    _init(db, capsys)
    asks = query(db, sa.select(t.pools.c.ask_eur_per_gpu_hour)
                 .where(t.pools.c.site_id == "KR-SUWON-1", t.pools.c.gpu_type == "H100"))
    assert asks[0][0] == 1.35


def test_init_shares_the_database_with_the_ledger(db: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from gridbridge.ledger import Ledger

    Ledger.open(db).close()
    _init(db, capsys)
    Ledger.open(db).close()
    versions = query(db, sa.text("SELECT component FROM schema_version ORDER BY component"))
    assert [r[0] for r in versions] == ["exchange", "ledger"]


def test_init_from_a_missing_folder_exits_2(db: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["exchange", "init", "--db", db, "--from", str(tmp_path / "nope")],
                           capsys)
    assert code == 2 and "does not exist" in err and "fix:" in err
    assert not (tmp_path / "exchange.db").exists()


def test_init_refuses_a_dataset_with_unknown_references(
        db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    for name in ("members.csv", "gpus.csv", "grid.parquet"):
        (folder / name).write_bytes((BRIDGE_2023 / name).read_bytes())
    sites = (BRIDGE_2023 / "sites.csv").read_text()
    (folder / "sites.csv").write_text(sites.replace("H100:248;A100:176", "H100:248;B200:8", 1))
    code, _, err = run_cli(["exchange", "init", "--db", db, "--from", str(folder)], capsys)
    assert code == 2
    assert "KR-SUWON-1" in err and "GPU type 'B200' is not in gpus" in err


def test_token_create_list_revoke(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _init(db, capsys)
    code, out, err = run_cli(["exchange", "token", "create", "--db", db, "--role", "site",
                              "--site", "KR-SUWON-1"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    token = lines[-1]
    assert len(token) >= 43 and " " not in token  # secrets.token_urlsafe(32), alone
    assert "site:KR-SUWON-1" in lines[0]
    rows = query(db, sa.select(t.tokens))
    assert len(rows) == 1
    row = rows[0]._mapping
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert (row["role"], row["subject"], row["revoked_at_utc"]) == ("site", "KR-SUWON-1", None)
    stored = " ".join(str(v) for v in row.values())
    assert token not in stored

    for args in (["--role", "member", "--member", "KR"], ["--role", "planner"],
                 ["--role", "treasurer"], ["--role", "admin"]):
        code, out, err = run_cli(["exchange", "token", "create", "--db", db, *args], capsys)
        assert code == 0, err

    code, out, _ = run_cli(["exchange", "token", "list", "--db", db], capsys)
    assert code == 0 and token not in out and row["token_sha256"] not in out
    assert row["token_id"] in out and "member" in out and "5 tokens, 5 active" in out

    code, out, _ = run_cli(["exchange", "token", "revoke", row["token_id"], "--db", db], capsys)
    assert code == 0 and f"revoked token {row['token_id']}" in out
    code, out, _ = run_cli(["exchange", "token", "revoke", row["token_id"], "--db", db], capsys)
    assert code == 0 and "already revoked" in out
    code, out, _ = run_cli(["exchange", "token", "list", "--db", db], capsys)
    assert "5 tokens, 4 active" in out
    code, _, err = run_cli(["exchange", "token", "revoke", "tok_nope", "--db", db], capsys)
    assert code == 2 and "no token tok_nope" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--role", "site", "--site", "NOPE-1"], "site 'NOPE-1' is not in the exchange's registry"),
        (["--role", "member", "--member", "FR"], "member 'FR' is not in the exchange's registry"),
        (["--role", "site"], "name it with --site SITE_ID"),
        (["--role", "planner", "--member", "KR"], "--member is for --role member"),
        (["--role", "root"], "role 'root' is not one of"),
    ],
    ids=["unknown-site", "unknown-member", "no-site", "subject-for-planner", "unknown-role"],
)
def test_token_create_refusals_exit_2(db: str, capsys: pytest.CaptureFixture[str],
                                      args: list[str], expected: str) -> None:
    _init(db, capsys)
    code, _, err = run_cli(["exchange", "token", "create", "--db", db, *args], capsys)
    assert code == 2 and expected in err, err
    assert counts(db)["tokens"] == 0


def test_commands_on_an_uninitialised_database_exit_6(
        db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["token", "list"], ["serve", "--port", "8799"]):
        code, _, err = run_cli(["exchange", *args, "--db", db], capsys)
        assert code == 6 and "exchange init" in err, err
    assert not (tmp_path / "exchange.db").exists()  # not created by asking

    from gridbridge.ledger import Ledger

    Ledger.open(db).close()  # a database with the ledger only
    code, _, err = run_cli(["exchange", "serve", "--db", db], capsys)
    assert code == 6 and "has not been initialised" in err


def test_store_refuses_a_newer_schema(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _init(db, capsys)
    query(db, sa.text("UPDATE schema_version SET version = 99 WHERE component = 'exchange'"))
    code, _, err = run_cli(["exchange", "token", "list", "--db", db], capsys)
    assert code == 6 and "schema version 99, newer than" in err
    with pytest.raises(Exception, match="newer than"):
        ExchangeStore.open(db, create=True)


def test_tables_compile_for_postgresql() -> None:
    """No SQLite-only SQL in the exchange's schema."""
    ddl = "\n".join(str(sa.schema.CreateTable(table).compile(dialect=postgresql.dialect()))
                    for table in t.metadata.sorted_tables)
    assert "CONSTRAINT uq_exchange_telemetry_site_report UNIQUE (site_id, report_id)" in ddl
    assert "id BIGSERIAL NOT NULL" in ddl

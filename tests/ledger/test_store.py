"""The ledger on real databases (a SQLite file, a PostgreSQL database): round trips,
balances, refusals, corrections, schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gridbridge.errors import LedgerError
from gridbridge.ledger import LEDGER_SCHEMA_VERSION, POSTING_SCHEMA, ROUNDS_SCHEMA, Ledger
from gridbridge.ledger.store import metadata
from tests.databases import Databases
from tests.ledger.sample import ROUND, corrections, counts, sample_round


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def ledger(databases: Databases) -> Iterator[Ledger]:
    with Ledger.open(databases.fresh("ledger")) as opened:
        yield opened


def test_round_trip_returns_exactly_what_was_posted(ledger: Ledger) -> None:
    posted = sample_round(bids=3).sample(fraction=1.0, shuffle=True, seed=7)
    assert ledger.post_round(ROUND, posted, source="out/w27") == 3 * 6 + 2
    back = ledger.postings(ROUND)
    assert back.schema == pl.Schema(POSTING_SCHEMA)
    assert back.equals(posted.sort("posting_id"))
    assert back["bid_id"].null_count() == 2
    assert ledger.postings().equals(back)
    assert ledger.postings("R-unknown").is_empty()
    assert ledger.postings("R-unknown").schema == pl.Schema(POSTING_SCHEMA)


def test_posting_survives_reopening(tmp_path: Path) -> None:
    with Ledger.open(url(tmp_path / "l.db")) as first:
        first.post_round(ROUND, sample_round())
    with Ledger.open(url(tmp_path / "l.db")) as again:
        assert again.postings(ROUND).equals(sample_round())


def test_balances_by_hand(ledger: Ledger) -> None:
    ledger.post_round(ROUND, sample_round(bids=2))
    # bid 0: DE on SITE-0 pays 1000 + 500 + 30; bid 1: KR on SITE-1 pays 1001 + 501 + 31,
    # KR also pays the rounding cent.
    expected = pl.DataFrame(
        {"account": ["alliance:carbon-fund", "alliance:rounding", "member:DE", "member:KR",
                     "site:SITE-0", "site:SITE-1"],
         "amount_cents": [61, 1, -1530, -1534, 1500, 1502]},
        schema={"account": pl.String, "amount_cents": pl.Int64},
    )
    assert ledger.balances().equals(expected)
    assert ledger.balances(ROUND).equals(expected)
    assert ledger.balances("R-unknown").is_empty()


def test_every_round_and_the_ledger_sum_to_zero(ledger: Ledger) -> None:
    for day, bids in ((3, 1), (4, 7), (5, 40)):
        round_id = f"R-2023070{day}-000000{day}"
        ledger.post_round(round_id, sample_round(round_id, bids, f"2023-07-0{day}T00:00Z"))
    rounds = ledger.rounds()
    assert rounds.schema == pl.Schema(ROUNDS_SCHEMA)
    assert rounds["lines"].to_list() == [8, 44, 242]
    for round_id in rounds["round_id"]:
        assert ledger.postings(round_id)["amount_cents"].sum() == 0
        assert ledger.balances(round_id)["amount_cents"].sum() == 0
    assert ledger.balances()["amount_cents"].sum() == 0
    assert ledger.postings().height == 8 + 44 + 242


def test_posting_twice_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    ledger.post_round(ROUND, sample_round(), source="out/w27")
    before = counts(ledger)
    # Even a different body for the same round: a posted round is final.
    again = sample_round(bids=5, prefix="other")
    with pytest.raises(LedgerError) as caught:
        ledger.post_round(ROUND, again)
    message = str(caught.value)
    assert f"round {ROUND} is already posted (14 lines on 2023-07-03T00:00Z from out/w27)" \
        in message
    assert "never posted again" in message and "post_corrections" in message
    assert counts(ledger) == before
    assert ledger.postings(ROUND).equals(sample_round())


def test_a_posting_id_already_used_by_another_round_is_refused(ledger: Ledger) -> None:
    ledger.post_round(ROUND, sample_round())
    clash = sample_round("R-20230704-00000004", prefix=ROUND)
    before = counts(ledger)
    with pytest.raises(LedgerError, match=rf"posting_id '{ROUND}:000001' \(round {ROUND}\)"):
        ledger.post_round("R-20230704-00000004", clash)
    assert counts(ledger) == before
    assert ledger.rounds()["round_id"].to_list() == [ROUND]


def test_corrections(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="round R-nope is not in the ledger"):
        ledger.post_corrections("R-nope", "meter-1", corrections("R-nope", "meter-1", 25))
    assert counts(ledger) == {"ledger_rounds": 0, "ledger_batches": 0, "ledger_postings": 0}

    ledger.post_round(ROUND, sample_round())
    assert ledger.post_corrections(ROUND, "meter-1", corrections(ROUND, "meter-1", 25)) == 2
    assert ledger.post_corrections(ROUND, "meter-2", corrections(ROUND, "meter-2", -5)) == 2
    before = counts(ledger)
    assert before == {"ledger_rounds": 1, "ledger_batches": 2, "ledger_postings": 18}

    with pytest.raises(LedgerError, match="batch meter-1 of round .* is already posted "
                                          r"\(2 lines on 2023-07-10T00:00Z\)"):
        ledger.post_corrections(ROUND, "meter-1", corrections(ROUND, "meter-1b", 25))
    unbalanced = corrections(ROUND, "meter-3", 25).with_columns(
        pl.Series("amount_cents", [-25, 24]))
    with pytest.raises(LedgerError, match="amounts sum to -1 cents"):
        ledger.post_corrections(ROUND, "meter-3", unbalanced)
    with pytest.raises(LedgerError, match="batch id '' is empty"):
        ledger.post_corrections(ROUND, "", corrections(ROUND, "x", 1))
    assert counts(ledger) == before

    balances = dict(ledger.balances(ROUND).iter_rows())
    assert balances["member:DE"] == -1530 - 25 + 5
    assert balances["site:SITE-0"] == 1500 + 25 - 5
    assert sum(balances.values()) == 0
    assert ledger.rounds().row(0, named=True) == {
        "round_id": ROUND, "posted_at_utc": "2023-07-03T00:00Z", "source": "", "lines": 14,
        "batches": 2}
    assert ledger.postings(ROUND).height == 18
    assert ledger.postings(ROUND)["posting_id"].is_sorted()


def test_sqlite_connections_are_durable(tmp_path: Path) -> None:
    with Ledger.open(url(tmp_path / "ledger.db")) as ledger, ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_schema_version_row(databases: Databases) -> None:
    db = databases.fresh("ledger-version")
    Ledger.open(db).close()
    Ledger.open(db).close()  # opening again neither fails nor adds a row
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        rows = conn.exec_driver_sql("SELECT component, version FROM schema_version").all()
        assert [tuple(r) for r in rows] == [("ledger", LEDGER_SCHEMA_VERSION)]
        conn.exec_driver_sql("UPDATE schema_version SET version = 99")
    engine.dispose()
    with pytest.raises(LedgerError, match="schema version 99, newer than"):
        Ledger.open(db)


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda tmp: f"sqlite:///{tmp}/no/such/folder/l.db", "folder .*no/such/folder does not"),
        (lambda tmp: "not a url", "is not a database URL"),
        (lambda tmp: "nosuchdb://host/x", "cannot open the ledger database nosuchdb://host/x"),
        (lambda tmp: f"sqlite:///{tmp}/garbage.db", "garbage.db: file is not a database"),
    ],
    ids=["missing-folder", "malformed", "unknown-dialect", "not-a-database"],
)
def test_unopenable_urls_are_ledger_errors(tmp_path: Path, make_url: Callable[[Path], str],
                                           expected: str) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not sqlite, " * 100)
    target = make_url(tmp_path)
    with pytest.raises(LedgerError, match=expected) as caught:
        Ledger.open(target)
    assert "fix:" in str(caught.value)


def test_password_is_hidden_in_messages() -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger.open("nosuchdb://user:hunter2@host/x")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_tables_compile_for_postgresql() -> None:
    """No SQLite-only SQL in the schema: every table compiles for PostgreSQL."""
    ddl = "\n".join(str(sa.schema.CreateTable(t).compile(dialect=postgresql.dialect()))
                    for t in metadata.sorted_tables)
    assert "amount_cents BIGINT NOT NULL" in ddl
    assert "FOREIGN KEY(round_id, batch_id) REFERENCES ledger_batches" in ddl

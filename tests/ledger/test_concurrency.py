"""All or nothing: a process killed mid-posting leaves no trace; racing posters, one winner."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import polars as pl

from gridbridge.errors import LedgerError
from gridbridge.ledger import Ledger
from tests.conftest import REPO_ROOT
from tests.databases import Databases
from tests.ledger.sample import sample_round

# Runs in a child process: opens the ledger, starts posting a round of 3002 lines (four
# INSERTs of at most 1000 postings after the round's row) and dies hard, mid-transaction,
# right after the second INSERT of postings, so the round's row and 2000 lines are written
# but not committed. A tiny page cache makes SQLite spill those uncommitted pages into the
# WAL file first, so recovery must really ignore them on disk, not merely in memory. On
# PostgreSQL the dead backend's transaction is rolled back by the server.
CHILD = textwrap.dedent("""
    import os, sys
    import sqlalchemy as sa
    from gridbridge.ledger import Ledger
    from tests.ledger.sample import sample_round

    url, round_id = sys.argv[1], sys.argv[2]
    ledger = Ledger.open(url)
    inserts = 0

    @sa.event.listens_for(ledger.engine, "begin")
    def small_cache(conn):
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size = 2")

    @sa.event.listens_for(ledger.engine, "after_cursor_execute")
    def die(conn, cursor, statement, parameters, context, executemany):
        global inserts
        if statement.startswith("INSERT INTO ledger_postings"):
            inserts += 1
            if inserts == 2:
                cursor.execute("SELECT count(*) FROM ledger_postings")
                print("written, uncommitted:", cursor.fetchone()[0], flush=True)
                os._exit(17)

    ledger.post_round(round_id, sample_round(round_id, bids=500))
    print("posted: the kill did not happen", flush=True)
""")


def test_killed_mid_transaction_leaves_nothing(databases: Databases) -> None:
    url = databases.fresh("ledger-kill")
    round_id = "R-20230703-crash001"
    child = subprocess.run([sys.executable, "-c", CHILD, url, round_id], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 17, child.stdout + child.stderr
    assert "written, uncommitted: 2000" in child.stdout

    with Ledger.open(url) as ledger:
        assert ledger.postings(round_id).is_empty()
        assert ledger.rounds().is_empty()
        posted = sample_round(round_id, bids=500)
        assert ledger.post_round(round_id, posted) == 3002
        assert ledger.postings(round_id).equals(posted.sort("posting_id"))


def race(ledgers: tuple[Ledger, Ledger], round_id: str,
         postings: pl.DataFrame) -> list[int | LedgerError]:
    """Both ledgers post the same round at the same moment; what each got back."""
    start = threading.Barrier(len(ledgers))
    outcomes: list[int | LedgerError] = []
    lock = threading.Lock()

    def post(ledger: Ledger) -> None:
        start.wait()
        try:
            result: int | LedgerError = ledger.post_round(round_id, postings)
        except LedgerError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=post, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_racing_posters_one_wins(databases: Databases) -> None:
    url = databases.fresh("ledger-race")
    with Ledger.open(url) as first, Ledger.open(url) as second:
        for attempt in range(4):
            round_id = f"R-20230703-race{attempt:04d}"
            postings = sample_round(round_id, bids=300)
            outcomes = race((first, second), round_id, postings)
            wins = [o for o in outcomes if isinstance(o, int)]
            refusals = [o for o in outcomes if isinstance(o, LedgerError)]
            assert wins == [1802] and len(refusals) == 1, outcomes
            assert "is already posted (1802 lines" in str(refusals[0])
            assert first.postings(round_id).equals(postings.sort("posting_id"))
        assert second.rounds().height == 4

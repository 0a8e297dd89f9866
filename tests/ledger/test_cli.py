"""``gridbridge ledger post`` and ``gridbridge ledger show`` on hand-made clearing folders."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from gridbridge.cli.ledger import euros
from gridbridge.ledger import Ledger
from tests.conftest import run_cli
from tests.databases import Databases
from tests.ledger.sample import ROUND, counts, sample_round, write_out_dir


@pytest.fixture
def db(databases: Databases) -> str:
    return databases.fresh("ledger-cli")


def test_post_then_show(tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = write_out_dir(tmp_path / "clearing", sample_round(bids=2))
    code, out, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 0, err
    assert f"posted round {ROUND}: 14 lines, sum 0 cents" in out
    with Ledger.open(db) as ledger:
        assert ledger.postings(ROUND).equals(sample_round(bids=2))
        assert ledger.rounds()["source"].to_list() == [str(out_dir)]

    code, out, err = run_cli(["ledger", "show", "--db", db], capsys)
    assert code == 0, err
    lines = out.splitlines()
    row = next(line for line in lines if "member:DE" in line)
    assert "-15.30" in row and "-1,530" in row
    assert "15.00" in next(line for line in lines if "site:SITE-0" in line)
    total = next(line for line in lines if "total" in line)
    assert "0.00" in total and "-" not in total.replace("─", "")

    code, out, _ = run_cli(["ledger", "show", "--db", db, "--round", ROUND], capsys)
    assert code == 0 and f"round {ROUND}" in out and "member:KR" in out


def test_posting_the_same_folder_twice_exits_5(tmp_path: Path, db: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = write_out_dir(tmp_path / "clearing", sample_round())
    assert run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)[0] == 0
    code, out, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 5
    assert f"round {ROUND} is already posted (14 lines" in err
    assert "posted round" not in out
    with Ledger.open(db) as ledger:
        assert counts(ledger)["ledger_postings"] == 14


def test_unbalanced_csv_exits_5_and_names_the_file(tmp_path: Path, db: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    frame = sample_round().with_columns(
        pl.when(pl.col("account") == "alliance:rounding").then(2).otherwise(
            pl.col("amount_cents")).alias("amount_cents"))
    out_dir = write_out_dir(tmp_path / "clearing", frame)
    code, _, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 5
    assert "ledger.csv, field 'amount_cents': amounts sum to 1 cents" in err
    with Ledger.open(db) as ledger:
        assert counts(ledger) == {"ledger_rounds": 0, "ledger_batches": 0, "ledger_postings": 0}


@pytest.mark.parametrize(
    ("ledger_csv", "expected"),
    [
        ("", "the file is empty"),
        ("posting_id,round_id\n", "missing column(s): bid_id, account, kind, amount_cents"),
        (None, "row 2, field 'amount_cents': posting_id 'R-20230703-ab12cd34:000002': "
               "'12.5' is not a whole number of cents"),
        ("posting_id,round_id,bid_id,account,kind,amount_cents,posted_at_utc\n"
         'a,R-20230703-ab12cd34,,member:DE,energy,"-1\n', "is not valid CSV"),
        ("posting_id,round_id,bid_id,account,kind,amount_cents,posted_at_utc\n"
         "a,R-20230703-ab12cd34,,member:DE,energy,-1\n", "row 1: has 6 field(s)"),
    ],
    ids=["empty", "missing-columns", "fractional-cents", "open-quote", "ragged-row"],
)
def test_malformed_ledger_csv_exits_5(tmp_path: Path, db: str, ledger_csv: str | None,
                                      expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = write_out_dir(tmp_path / "clearing", sample_round())
    if ledger_csv is None:
        text = (out_dir / "ledger.csv").read_text().splitlines()
        text[2] = text[2].replace(",1000,", ",12.5,")
        ledger_csv = "\n".join(text) + "\n"
    (out_dir / "ledger.csv").write_text(ledger_csv)
    code, _, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 5, err
    assert expected in err.replace("\n", " ") or expected in err, err
    assert "ledger.csv" in err


def test_missing_files_and_round_id(tmp_path: Path, db: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["ledger", "post", str(tmp_path / "nowhere"), "--db", db], capsys)
    assert code == 2 and "summary.json: file not found" in err and "gridbridge clear" in err

    out_dir = write_out_dir(tmp_path / "no-csv", sample_round())
    (out_dir / "ledger.csv").unlink()
    code, _, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 2 and "ledger.csv: file not found" in err

    out_dir = write_out_dir(tmp_path / "no-id", sample_round(), round_id=None)
    code, _, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 2 and "has no round_id" in err

    (out_dir / "summary.json").write_text("{not json")
    code, _, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 2 and "cannot be read as JSON" in err


def test_summary_round_id_must_match_the_csv(tmp_path: Path, db: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = write_out_dir(tmp_path / "clearing", sample_round(), round_id="R-other")
    code, _, err = run_cli(["ledger", "post", str(out_dir), "--db", db], capsys)
    assert code == 5
    assert "not the round being posted ('R-other')" in err


def test_show_errors_and_empty_ledger(tmp_path: Path, db: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["ledger", "show", "--db", db], capsys)
    assert code == 0 and "no postings yet" in out
    code, _, err = run_cli(["ledger", "show", "--db", db, "--round", "R-nope"], capsys)
    assert code == 2 and "round R-nope is not in the ledger" in err
    missing = f"sqlite:///{tmp_path / 'no' / 'dir' / 'l.db'}"
    code, _, err = run_cli(["ledger", "show", "--db", missing], capsys)
    assert code == 5 and "does not exist" in err and "fix:" in err


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (5, "0.05"), (-5, "-0.05"),
                                            (123456789, "1,234,567.89"), (-100, "-1.00")])
def test_euros_are_exact(cents: int, text: str) -> None:
    assert euros(cents) == text

"""``gridbridge report`` end to end: files, printed totals, exit codes, the ledger database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from gridbridge.reports import REPORT_TABLES
from tests.conftest import run_cli
from tests.databases import Databases
from tests.reports.conftest import copy_clearing


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_writes_into_the_clearing_and_changes_nothing_else(
        cleared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_clearing(cleared, "cli-default")
    before = digests(folder)
    code, out, err = run_cli(["report", str(folder)], capsys)
    assert code == 0, err
    reports = folder / "reports"
    assert sorted(p.name for p in reports.iterdir()) == sorted(f"{t}.csv" for t in REPORT_TABLES)
    for name in REPORT_TABLES:
        assert f"wrote {reports / name}.csv" in out
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["round_id"] in out and "ledger sum (cents, must be 0)" in out
    first = digests(folder)
    assert {k: v for k, v in first.items() if not k.startswith("reports/")} == before
    assert run_cli(["report", str(folder)], capsys)[0] == 0
    assert digests(folder) == first


@pytest.mark.parametrize("fmt", ["parquet", "xlsx"])
def test_report_formats_and_out(cleared: Path, tmp_path: Path, fmt: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["report", str(cleared), "--format", fmt, "--out", str(tmp_path)],
                           capsys)
    assert code == 0
    assert f"wrote {tmp_path}" in out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == (["settlement.xlsx"] if fmt == "xlsx"
                     else sorted(f"{t}.parquet" for t in REPORT_TABLES))
    assert not (cleared / "reports").exists()


def test_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert "nowhere is not a folder" in err and "gridbridge clear" in err


def test_missing_ledger_exits_2(cleared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_clearing(cleared, "cli-no-ledger")
    (folder / "ledger.csv").unlink()
    code, _, err = run_cli(["report", str(folder)], capsys)
    assert code == 2
    assert "ledger.csv: file not found" in " ".join(err.split())
    assert "gridbridge clear" in err and "--db" in err
    assert not (folder / "reports").exists()


def test_missing_bundle_exits_2(cleared: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_clearing(cleared, "cli-no-bundle")
    summary = orjson.loads((folder / "summary.json").read_bytes())
    summary["bundle"] = "../gone"
    (folder / "summary.json").write_bytes(orjson.dumps(summary))
    code, _, err = run_cli(["report", str(folder)], capsys)
    assert code == 2
    assert "field 'bundle'" in " ".join(err.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "pdf"], "--format must be one of csv, parquet, xlsx"),
])
def test_bad_options_exit_2(cleared: Path, args: list[str], message: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["report", str(cleared), *args], capsys)
    assert code == 2
    assert message in err


def test_out_cannot_be_the_clearing_folder(cleared: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    before = digests(cleared)
    code, _, err = run_cli(["report", str(cleared), "--out", str(cleared)], capsys)
    assert code == 2
    assert "is the clearing folder itself" in " ".join(err.split())
    assert digests(cleared) == before


def test_report_from_the_ledger_database(cleared: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         databases: Databases) -> None:
    url = databases.fresh("reports")
    code, _, err = run_cli(["report", str(cleared), "--db", url, "--out", str(tmp_path / "r")],
                           capsys)
    assert code == 2
    assert "is not in the ledger" in err and f"gridbridge ledger post {cleared}" in err
    assert run_cli(["ledger", "post", str(cleared), "--db", url], capsys)[0] == 0
    assert run_cli(["report", str(cleared), "--db", url, "--out", str(tmp_path / "db")],
                   capsys)[0] == 0
    assert run_cli(["report", str(cleared), "--out", str(tmp_path / "csv")], capsys)[0] == 0
    assert digests(tmp_path / "db") == digests(tmp_path / "csv")

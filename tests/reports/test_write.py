"""Report files: CSV and Parquet byte-identical from run to run, one real Excel workbook."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from gridbridge.errors import InputError
from gridbridge.reports import REPORT_TABLES, WORKBOOK, build_reports, write_reports

openpyxl = pytest.importorskip("openpyxl", reason="pip install -e '.[dev]' (openpyxl)")


@pytest.fixture(scope="module")
def reports(cleared: Path) -> dict[str, pl.DataFrame]:
    return build_reports(cleared)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_are_byte_identical_across_runs(cleared: Path, tmp_path: Path, fmt: str) -> None:
    first = write_reports(build_reports(cleared), tmp_path / "a", fmt)
    second = write_reports(build_reports(cleared), tmp_path / "b", fmt)
    assert [p.name for p in first] == [f"{name}.{fmt}" for name in REPORT_TABLES]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    # Writing over the same folder again leaves the same bytes and no temporary files.
    before = {p.name: p.read_bytes() for p in first}
    write_reports(build_reports(cleared), tmp_path / "a", fmt)
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == before


def test_parquet_keeps_the_types(reports: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    for path in write_reports(reports, tmp_path, "parquet"):
        assert_frame_equal(pl.read_parquet(path), reports[path.stem], check_exact=True)


def test_csv_writes_times_the_project_way(reports: dict[str, pl.DataFrame],
                                          tmp_path: Path) -> None:
    write_reports(reports, tmp_path, "csv")
    usage = pl.read_csv(tmp_path / "usage_records.csv", infer_schema=False)
    assert usage["start_utc"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:00Z$").all()
    ledger = pl.read_csv(tmp_path / "ledger.csv", schema_overrides={"amount_cents": pl.Int64})
    assert int(ledger["amount_cents"].sum()) == 0


def test_xlsx_is_one_typed_workbook(reports: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    paths = write_reports(reports, tmp_path, "xlsx")
    assert paths == [tmp_path / WORKBOOK]
    book = openpyxl.load_workbook(paths[0])
    assert book.sheetnames == list(REPORT_TABLES)
    assert all(len(name) <= 31 for name in book.sheetnames)
    for name in REPORT_TABLES:
        sheet = book[name]
        frame = reports[name]
        assert sheet.freeze_panes == "A2", name
        header = [cell.value for cell in sheet[1]]
        assert header == frame.columns, name
        assert all(cell.font.b for cell in sheet[1]), name
        assert sheet.max_row == frame.height + 1, name
        for column, dtype in frame.schema.items():
            cells = [row[frame.columns.index(column)] for row in
                     sheet.iter_rows(min_row=2, values_only=True)]
            present = [c for c in cells if c is not None]
            if dtype.is_numeric():
                assert all(isinstance(c, int | float) for c in present), (name, column)
            elif isinstance(dtype, pl.Datetime | pl.Date):
                assert all(isinstance(c, datetime) for c in present), (name, column)
    ledger = book["ledger"]
    column = [c.value for c in ledger[1]].index("amount_cents")
    amounts = [row[column] for row in ledger.iter_rows(min_row=2, values_only=True)]
    assert len(amounts) == reports["ledger"].height
    assert all(isinstance(a, int) for a in amounts) and sum(amounts) == 0
    totals = book["member_totals"]
    net = [c.value for c in totals[1]].index("net_eur")
    assert totals.cell(row=2, column=net + 1).number_format == "#,##0.00"


def test_xlsx_is_the_same_from_run_to_run(reports: dict[str, pl.DataFrame],
                                          tmp_path: Path) -> None:
    a = write_reports(reports, tmp_path / "a", "xlsx")[0]
    b = write_reports(reports, tmp_path / "b", "xlsx")[0]
    assert a.read_bytes() == b.read_bytes()


def test_unknown_format_is_refused(reports: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="csv, parquet, xlsx"):
        write_reports(reports, tmp_path, "pdf")
    assert not tmp_path.joinpath("pdf").exists()

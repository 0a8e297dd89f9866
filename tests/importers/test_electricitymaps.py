"""Electricity Maps carbon-intensity CSV import: happy paths, year completion, every error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gridbridge.errors import DataImportError, InputError, NotFoundError
from gridbridge.importers.electricitymaps import read_electricitymaps_csv

HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)
ASCII_HEADER = HEADER.replace("₂", "2")
DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"


def row(stamp: str, direct: object, lca: object, estimated: str = "false", zone: str = "KR") -> str:
    place = "South Korea,South Korea"
    return f"{stamp},{place},{zone},{direct},{lca},37.46,1.95,new.kpx.or.kr,{estimated},"


def write(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "KR.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def stamp(hour: int, year: int = 2023) -> str:
    return (datetime(year, 1, 1) + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M:%S")


# Hypothesis reuses tmp_path across examples; each example overwrites its one file.
GARBAGE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


SAMPLE = [
    row("2023-01-01 00:00:00", 363.97, 422.78),
    row("2023-01-01 01:00:00", 353.75, 409.93, "true"),
    row("2023-01-01 02:00:00", 338.82, 393.4),
]


def test_reads_the_real_format(tmp_path: Path) -> None:
    result = read_electricitymaps_csv(write(tmp_path, SAMPLE))
    frame = result.frame
    assert frame.schema == pl.Schema(
        {
            "zone": pl.String,
            "hour_utc": pl.Datetime("us", "UTC"),
            "carbon_direct_g_per_kwh": pl.Float64,
            "carbon_lifecycle_g_per_kwh": pl.Float64,
            "estimated": pl.Boolean,
        }
    )
    assert frame["zone"].to_list() == ["KR"] * 3
    assert frame["hour_utc"].to_list() == [z(2023, 1, 1, 0), z(2023, 1, 1, 1), z(2023, 1, 1, 2)]
    assert frame["carbon_direct_g_per_kwh"].to_list() == [363.97, 353.75, 338.82]
    assert frame["carbon_lifecycle_g_per_kwh"].to_list() == [422.78, 409.93, 393.4]
    assert frame["estimated"].to_list() == [False, True, False]
    assert "3 hourly row(s) of zone KR" in result.notes[0]
    assert "1 flagged estimated" in result.notes[0]


def test_accepts_ascii_co2_bom_and_iso_stamps(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    rows = [row("2023-01-01T01:00Z", 2, 3), row("2023-01-01 00:00:00", 1, 2)]
    text = "\n".join([ASCII_HEADER, *rows])
    path.write_text("\ufeff" + text + "\n\n", encoding="utf-8")
    frame = read_electricitymaps_csv(path).frame
    # Sorted by hour whatever the file order.
    assert frame["hour_utc"].to_list() == [z(2023, 1, 1, 0), z(2023, 1, 1, 1)]
    assert frame["carbon_direct_g_per_kwh"].to_list() == [1.0, 2.0]


def test_zone_override_relabels(tmp_path: Path) -> None:
    result = read_electricitymaps_csv(write(tmp_path, SAMPLE), zone="KR-SEOUL")
    assert set(result.frame["zone"]) == {"KR-SEOUL"}
    assert any("'KR' in the file is labelled 'KR-SEOUL'" in n for n in result.notes)


def test_zone_given_makes_zone_column_optional(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["2023-01-01 00:00:00,10,20,false"],
        header=f"Datetime (UTC),{DIRECT},{LCA},Data Estimated",
    )
    assert read_electricitymaps_csv(path, zone="XX").frame["zone"].to_list() == ["XX"]


def test_year_fills_missing_hours_from_nearest(tmp_path: Path) -> None:
    # Hours 10, 11 and 12 are missing (11 ties: the earlier neighbour wins), as is the
    # year's last hour; one row from 2022 falls outside the year.
    present = [h for h in range(8760) if h not in (10, 11, 12, 8759)]
    # Intensities h / 10 and h / 10 + 1000 stay within the sane 0-2,000 gCO2eq/kWh.
    rows = [row(stamp(h), h / 10, h / 10 + 1000) for h in present]
    rows.append(row("2022-12-31 23:00:00", 1, 1))
    result = read_electricitymaps_csv(write(tmp_path, rows), year=2023)
    frame = result.frame
    assert frame.height == 8760
    assert frame["hour_utc"].is_unique().all()
    assert frame["hour_utc"][0] == z(2023, 1, 1) and frame["hour_utc"][-1] == z(2023, 12, 31, 23)
    direct = frame["carbon_direct_g_per_kwh"].to_list()
    assert direct[9:14] == [0.9, 0.9, 0.9, 1.3, 1.3]
    assert direct[-1] == 875.8
    assert frame["carbon_lifecycle_g_per_kwh"][10] == 1000.9
    estimated = frame.filter(pl.col("estimated"))["hour_utc"].to_list()
    assert estimated == [*(z(2023, 1, 1, h) for h in (10, 11, 12)), z(2023, 12, 31, 23)]
    notes = " ".join(result.notes)
    assert "dropped 1 row(s) outside UTC year 2023" in notes
    assert "filled 4 missing hour(s) of 2023" in notes
    assert "2023-01-01T10:00Z–2023-01-01T12:00Z (3 h)" in notes


def test_year_keeps_source_estimated_flags(tmp_path: Path) -> None:
    rows = [row(stamp(h), 5, 6, "true" if h == 7 else "false") for h in range(8760)]
    result = read_electricitymaps_csv(write(tmp_path, rows), year=2023)
    assert result.frame["estimated"].sum() == 1
    assert not any("filled" in n for n in result.notes)


def test_leap_year_has_8784_hours(tmp_path: Path) -> None:
    result = read_electricitymaps_csv(write(tmp_path, [row(stamp(0, 2024), 1, 2)]), year=2024)
    assert result.frame.height == 8784
    assert result.frame["estimated"].sum() == 8783


def test_without_year_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    rows = [row(stamp(0), 1, 2), row(stamp(3), 1, 2)]
    result = read_electricitymaps_csv(write(tmp_path, rows))
    assert result.frame.height == 2
    assert any("2 hour(s) missing" in n and "not filled" in n for n in result.notes)


def expect_error(path: Path, *fragments: str, **kwargs: object) -> str:
    with pytest.raises(DataImportError) as info:
        read_electricitymaps_csv(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert str(path) in message
    assert "fix:" in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_columns_lists_expected_names(tmp_path: Path) -> None:
    path = write(tmp_path, ["2023-01-01 00:00:00,KR,1"], header="Datetime (UTC),Zone Id,Carbon")
    expect_error(
        path,
        "missing column(s) 'Carbon Intensity gCO₂eq/kWh (direct)'",
        "'Data Estimated'",
        "expected 'Datetime (UTC)'",
        "'Zone Id'",
    )


def test_mixed_zones(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), row(stamp(1), 1, 2, zone="SG")])
    expect_error(path, "mixes 2 zones (KR, SG)", "one file per zone")


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("2023-13-01 00:00:00", "'2023-13-01 00:00:00' is not a date and time"),
        ("yesterday", "'yesterday' is not a date and time"),
        ("", "'' is not a date and time"),
        ("2023-01-01T02:00+01:00", "has offset 1:00:00, but this column holds UTC times"),
    ],
)
def test_unparsable_datetime(tmp_path: Path, bad: str, fragment: str) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), row(bad, 1, 2)])
    expect_error(path, "row 2, field 'Datetime (UTC)'", fragment)


def test_not_hour_aligned(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), row("2023-01-01 00:30:00", 1, 2)])
    expect_error(path, "row 2, field 'Datetime (UTC)'", "is not on a whole hour")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("nan", "is NaN"),
        ("", "is empty"),
        ("-1.5", "is negative"),
        ("abc", "is not a number"),
        ("inf", "is infinite"),
    ],
)
def test_bad_intensity(tmp_path: Path, value: str, fragment: str) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), row(stamp(1), 1, 2), row(stamp(2), 1, value)])
    expect_error(path, f"row 3, field '{LCA}'", fragment)


@pytest.mark.parametrize("column", [DIRECT, LCA])
def test_an_intensity_above_its_sane_bound_is_refused(tmp_path: Path, column: str) -> None:
    bad = {"direct": 1, "lca": 2} | ({"direct": 2000.01} if column == DIRECT else {"lca": 2000.01})
    path = write(tmp_path, [row(stamp(0), 2000, 0), row(stamp(1), bad["direct"], bad["lca"])])
    expect_error(path, f"row 2, field '{column}'",
                 "value '2000.01' is not between 0 and 2000 gCO2eq/kWh", "not per MWh")


def test_intensities_on_their_sane_bounds_are_imported(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 2000, 0), row(stamp(1), 0, 2000)])
    frame = read_electricitymaps_csv(path).frame
    assert frame["carbon_direct_g_per_kwh"].to_list() == [2000.0, 0.0]
    assert frame["carbon_lifecycle_g_per_kwh"].to_list() == [0.0, 2000.0]


def test_bad_intensity_counts_more_rows(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(h), -1, 2) for h in range(4)])
    expect_error(path, f"row 1, field '{DIRECT}'", "(and 3 more row(s) like it)")


def test_duplicate_hours(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), row(stamp(1), 1, 2), row(stamp(0), 3, 4)])
    expect_error(path, "row 3", "hour 2023-01-01T00:00Z appears 2 times (rows 1, 3)", "one row")


def test_duplicate_hours_via_equivalent_spellings(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), row("2023-01-01T00:00:00+00:00", 1, 2)])
    expect_error(path, "appears 2 times")


def test_bad_estimated_flag(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2, "maybe")])
    expect_error(path, "row 1, field 'Data Estimated'", "'maybe' is not true or false")


def test_ragged_row(tmp_path: Path) -> None:
    path = write(tmp_path, [row(stamp(0), 1, 2), "2023-01-01 01:00:00,KR,1"])
    expect_error(path, "row 2", "3 field(s) where the header has 11")


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    expect_error(empty, "the file is empty")
    expect_error(write(tmp_path, []), "no data rows")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.replace("₂", "2").encode() + b"\n\xe9\xff\n")
    expect_error(path, "not UTF-8")


def test_no_data_in_year(tmp_path: Path) -> None:
    expect_error(write(tmp_path, SAMPLE), "no data for UTC year 2022", year=2022)


def test_year_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="year 20230 is out of range"):
        read_electricitymaps_csv(write(tmp_path, SAMPLE), year=20230)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="file not found"):
        read_electricitymaps_csv(tmp_path / "nope.csv")


@GARBAGE
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_data_import_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(data)
    with pytest.raises(DataImportError):
        read_electricitymaps_csv(path)


CELL = st.one_of(
    st.sampled_from(["", "nan", "-1", "1e400", "true", "KR", "2023-01-01 00:00:00", "x,y", '"']),
    st.text(max_size=12),
)


@GARBAGE
@given(cells=st.lists(st.lists(CELL, min_size=1, max_size=12), min_size=1, max_size=5))
def test_garbage_cells_raise_data_import_error_or_import(
    tmp_path: Path, cells: list[list[str]]
) -> None:
    path = tmp_path / "garbage.csv"
    path.write_text(HEADER + "\n" + "\n".join(",".join(r) for r in cells), encoding="utf-8")
    try:
        result = read_electricitymaps_csv(path, year=2023)
    except DataImportError:
        return
    assert result.frame.height == 8760


# --- CLI -----------------------------------------------------------------------------------


def test_cli_carbon_writes_csv(tmp_path: Path) -> None:
    from gridbridge.cli import app

    src = write(tmp_path, SAMPLE)
    out = tmp_path / "out" / "carbon.csv"
    args = ["data", "carbon", str(src), "--zone", "KR", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 3 rows (1 estimated)" in result.output
    assert "3 hourly row(s) of zone KR" in result.output
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "zone,hour_utc,carbon_direct_g_per_kwh,carbon_lifecycle_g_per_kwh,estimated"
    )
    assert lines[1] == "KR,2023-01-01T00:00Z,363.97,422.78,false"


def test_cli_carbon_year_writes_parquet(tmp_path: Path) -> None:
    from gridbridge.cli import app

    out = tmp_path / "carbon.parquet"
    args = ["data", "carbon", str(write(tmp_path, SAMPLE)), "--year", "2023", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame.height == 8760
    assert frame.schema["hour_utc"] == pl.Datetime("us", "UTC")
    assert "filled 8757 missing hour(s)" in result.output


def test_cli_carbon_bad_input_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridbridge.cli import main

    src = write(tmp_path, [row(stamp(0), "nan", 2)])
    with pytest.raises(SystemExit) as info:
        main(["data", "carbon", str(src), "--out", str(tmp_path / "o.csv")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "is NaN" in err and "row 1" in err
    assert not (tmp_path / "o.csv").exists()


def test_cli_rejects_unknown_extension_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridbridge.cli import main

    with pytest.raises(SystemExit) as info:
        main(["data", "carbon", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.xlsx")])
    assert info.value.code == 2
    assert "extension '.xlsx'" in capsys.readouterr().err

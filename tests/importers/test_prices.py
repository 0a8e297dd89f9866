"""Price CSV import on local clocks, FX conversion, year-edge filling, flat tariffs, CLI."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gridbridge.errors import DataImportError, InputError
from gridbridge.importers.prices import flat_tariff, read_price_csv
from gridbridge.tables import write_table

# Hypothesis reuses tmp_path across examples; each example overwrites its one file.
GARBAGE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(
    tmp_path: Path, rows: list[tuple[str, object]], currency: str = "EUR", header: str | None = None
) -> Path:
    path = tmp_path / f"{currency}_prices.csv"
    lines = [header or f"Datetime,Price ({currency}/MWh)", *(f"{t},{v}" for t, v in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def local_year(year: int = 2023) -> list[str]:
    """A local-clock year of 8,760 stamps like the real files (no DST gaps or repeats)."""
    start = datetime(year, 1, 1)
    return [(start + timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S") for h in range(8760)]


def test_reads_eur_prices_with_negatives(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-07-02 13:00:00", -5.17), ("2023-07-02 14:00:00", -500)])
    result = read_price_csv(path, "DE", "Europe/Berlin", 1.0)
    frame = result.frame
    assert frame.schema == pl.Schema(
        {
            "zone": pl.String,
            "hour_utc": pl.Datetime("us", "UTC"),
            "price_eur_per_mwh": pl.Float64,
            "estimated": pl.Boolean,
        }
    )
    # CEST is UTC+2: the -500 EUR/MWh record hour 14:00-15:00 local is 12:00Z.
    assert frame["hour_utc"].to_list() == [z(2023, 7, 2, 11), z(2023, 7, 2, 12)]
    assert frame["price_eur_per_mwh"].to_list() == [-5.17, -500.0]
    assert not frame["estimated"].any()
    assert "EUR/MWh converted at 1 EUR = 1 EUR" in result.notes[0]


def test_fx_conversion(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-01-01 09:00:00", 207310.0)], currency="KRW")
    result = read_price_csv(path, "KR", "+09:00", 1412.88, currency="krw")
    assert result.frame["hour_utc"].to_list() == [z(2023, 1, 1, 0)]
    assert result.frame["price_eur_per_mwh"][0] == pytest.approx(207310.0 / 1412.88)


def test_currency_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", 1)], currency="SGD")
    with pytest.raises(DataImportError) as info:
        read_price_csv(path, "SG", "+08:00", 1.4523, currency="CAD")
    message = str(info.value)
    assert "prices are in SGD (header 'Price (SGD/MWh)'), not CAD" in message
    assert "fix: pass --currency SGD" in message


@pytest.mark.parametrize("fx", [0.0, -1.0, math.nan, math.inf])
def test_fx_must_be_positive_finite(tmp_path: Path, fx: float) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", 1)], currency="CAD")
    with pytest.raises(InputError, match="not a positive finite number"):
        read_price_csv(path, "CA-ON", "-05:00", fx)


def test_eur_file_needs_fx_one(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", 1)])
    with pytest.raises(InputError, match="use 1"):
        read_price_csv(path, "DE", "Europe/Berlin", 1.1)


def test_year_edge_fill_utc_plus_9(tmp_path: Path) -> None:
    # KR-like: local 2023 on UTC+9 covers 2022-12-31 15:00Z .. 2023-12-31 14:00Z.
    path = write(tmp_path, list(zip(local_year(), range(8760), strict=True)), currency="KRW")
    result = read_price_csv(path, "KR", "+09:00", 2.0, year=2023)
    frame = result.frame
    assert frame.height == 8760 and frame["hour_utc"].is_unique().all()
    filled = frame.filter(pl.col("estimated"))
    assert filled["hour_utc"].to_list() == [z(2023, 12, 31, 15 + h) for h in range(9)]
    # Nearest real hour: 2023-12-31 14:00Z = local 23:00, the file's last row (8759 / 2).
    assert filled["price_eur_per_mwh"].to_list() == [8759 / 2] * 9
    assert frame["price_eur_per_mwh"][0] == 9 / 2  # 00:00Z = local 09:00, row 10
    notes = " ".join(result.notes)
    assert "dropped 9 row(s) outside UTC year 2023" in notes
    assert "filled 9 missing hour(s)" in notes and "2023-12-31T15:00Z–2023-12-31T23:00Z" in notes


def test_year_edge_fill_utc_minus_5(tmp_path: Path) -> None:
    # CA-ON-like: IESO's EST all year; local 2023 covers 2023-01-01 05:00Z .. 2024-01-01 04:00Z.
    path = write(tmp_path, list(zip(local_year(), range(8760), strict=True)), currency="CAD")
    result = read_price_csv(path, "CA-ON", "UTC-05:00", 1.0, currency="CAD", year=2023)
    frame = result.frame
    assert frame.height == 8760
    filled = frame.filter(pl.col("estimated"))
    assert filled["hour_utc"].to_list() == [z(2023, 1, 1, h) for h in range(5)]
    assert filled["price_eur_per_mwh"].to_list() == [0.0] * 5  # from 05:00Z = local 00:00
    assert frame["price_eur_per_mwh"][-1] == 8754.0  # 23:00Z = local 18:00
    # No DST anywhere on a fixed clock: exactly 5 + 5 edge hours, nothing else.
    assert "dropped 5 row(s)" in " ".join(result.notes)


def _dst_year(gap: datetime, repeat: datetime) -> list[tuple[str, float]]:
    """A local year like the real DE/GB files: the gap hour holds a copy of a neighbour."""
    rows = []
    for h, text in enumerate(local_year()):
        value = float(h)
        if datetime.fromisoformat(text) == gap:
            value = float(h + 1)  # copies the next hour
        rows.append((text, value))
    assert any(datetime.fromisoformat(t) == repeat for t, _ in rows)
    return rows


def test_dst_year_berlin(tmp_path: Path) -> None:
    rows = _dst_year(datetime(2023, 3, 26, 2), datetime(2023, 10, 29, 2))
    result = read_price_csv(write(tmp_path, rows), "DE", "Europe/Berlin", 1.0, year=2023)
    frame = result.frame
    assert frame.height == 8760 and frame["hour_utc"].is_unique().all()
    estimated = frame.filter(pl.col("estimated"))["hour_utc"].to_list()
    # 01:00Z on 29 Oct (the CET 02:00 the file lacks) and the year's last UTC hour.
    assert estimated == [z(2023, 10, 29, 1), z(2023, 12, 31, 23)]
    by_hour = dict(zip(frame["hour_utc"], frame["price_eur_per_mwh"], strict=True))
    gap_row = 24 * 84 + 2  # local 2023-03-26 02:00
    assert by_hour[z(2023, 3, 26, 0)] == gap_row - 1  # local 01:00 CET
    assert by_hour[z(2023, 3, 26, 1)] == gap_row + 1  # local 03:00 CEST
    repeat_row = 24 * 301 + 2  # local 2023-10-29 02:00
    assert by_hour[z(2023, 10, 29, 0)] == repeat_row
    assert by_hour[z(2023, 10, 29, 1)] == repeat_row  # filled from the earlier neighbour
    assert by_hour[z(2023, 10, 29, 2)] == repeat_row + 1
    notes = " ".join(result.notes)
    assert "2023-03-26 02:00 does not exist" in notes and "duplicated the 03:00" in notes
    assert "2023-10-29 02:00 is ambiguous" in notes and "occurs once" in notes
    assert "filled 2 missing hour(s)" in notes


def test_dst_year_london(tmp_path: Path) -> None:
    rows = _dst_year(datetime(2023, 3, 26, 1), datetime(2023, 10, 29, 1))
    result = read_price_csv(write(tmp_path, rows), "GB", "Europe/London", 1.0, year=2023)
    frame = result.frame
    assert frame.height == 8760
    # Winter London time is UTC, so the only filled hour is the fall-back one.
    assert frame.filter(pl.col("estimated"))["hour_utc"].to_list() == [z(2023, 10, 29, 1)]


def test_fall_back_hour_twice_keeps_both(tmp_path: Path) -> None:
    rows = [
        ("2023-10-29 01:00:00", 1),
        ("2023-10-29 02:00:00", 2),
        ("2023-10-29 02:00:00", 3),
        ("2023-10-29 03:00:00", 4),
    ]
    frame = read_price_csv(write(tmp_path, rows), "DE", "Europe/Berlin", 1.0).frame
    assert frame["hour_utc"].to_list() == [
        z(2023, 10, 28, 23),
        z(2023, 10, 29, 0),
        z(2023, 10, 29, 1),
        z(2023, 10, 29, 2),
    ]
    assert frame["price_eur_per_mwh"].to_list() == [1.0, 2.0, 3.0, 4.0]


def expect_error(path: Path, *fragments: str, **kwargs: object) -> None:
    args = {"zone": "DE", "clock": "Europe/Berlin", "fx_per_eur": 1.0} | kwargs
    with pytest.raises(DataImportError) as info:
        read_price_csv(path, **args)  # type: ignore[arg-type]
    message = str(info.value)
    assert str(path) in message and "fix:" in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", 1)], header="Time,Price")
    expect_error(path, "missing column(s) 'Datetime', 'Price (<CUR>/MWh)'", "Price (KRW/MWh)")


def test_two_price_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [("2023-01-01 00:00:00", "1,2")],
        header="Datetime,Price (EUR/MWh),Price (GBP/MWh)",
    )
    expect_error(path, "2 price columns")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("NaN", "is NaN"),
        ("", "is empty"),
        ("inf", "is infinite"),
        ("1,5", "field(s) where the header has 2"),
    ],
)
def test_bad_price(tmp_path: Path, value: str, fragment: str) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", 1), ("2023-01-01 01:00:00", value)])
    expect_error(path, "row 2", fragment)


@pytest.mark.parametrize("value", ["-10000.01", "10000.01"])
def test_a_price_outside_its_sane_bounds_is_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", 1), ("2023-01-01 01:00:00", value)])
    expect_error(path, "row 2, field 'Price (EUR/MWh)'",
                 f"value '{value}' ({float(value):g} EUR/MWh at 1 EUR = 1 EUR) is not between "
                 "-10000 and 10000 EUR/MWh", "FX rate")


def test_a_price_outside_its_sane_bounds_once_converted_is_refused(tmp_path: Path) -> None:
    # KRW prices with the FX rate of EUR data: 207,310 "EUR"/MWh.
    path = write(tmp_path, [("2023-01-01 00:00:00", 207310.0)], currency="KRW")
    expect_error(path, "value '207310.0' (207310 EUR/MWh at 1 EUR = 1 KRW) is not between",
                 "check the file's currency (KRW) and the FX rate", zone="KR",
                 clock="+09:00", fx_per_eur=1.0)


def test_prices_on_their_sane_bounds_are_imported(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", -10000), ("2023-01-01 01:00:00", 10000)])
    frame = read_price_csv(path, "DE", "+01:00", 1.0).frame
    assert frame["price_eur_per_mwh"].to_list() == [-10000.0, 10000.0]
    path = write(tmp_path, [("2023-01-01 00:00:00", 14128800.0)], currency="KRW")
    assert read_price_csv(path, "KR", "+09:00", 1412.88).frame["price_eur_per_mwh"].to_list() == [
        pytest.approx(10000.0)]


def test_bad_price_names_column(tmp_path: Path) -> None:
    path = write(tmp_path, [("2023-01-01 00:00:00", "n/a")])
    expect_error(path, "row 1, field 'Price (EUR/MWh)'", "'n/a' is not a number")


@pytest.mark.parametrize(
    ("stamp", "fragment"),
    [
        ("01/01/2023 00:00", "is not a date and time"),
        ("2023-01-01T00:00+01:00", "carries a UTC offset"),
        ("2023-01-01 00:15:00", "is not on a whole hour"),
    ],
)
def test_bad_datetime(tmp_path: Path, stamp: str, fragment: str) -> None:
    path = write(tmp_path, [(stamp, 1)])
    expect_error(path, "row 1, field 'Datetime'", fragment)


def test_repeated_local_hour(tmp_path: Path) -> None:
    rows = [("2023-06-01 00:00:00", 1), ("2023-06-01 01:00:00", 2), ("2023-06-01 01:00:00", 3)]
    expect_error(write(tmp_path, rows), "row 3", "appears 2 times (rows 2, 3)")


def test_unknown_clock(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="clock 'Europe/Atlantis' is not a known time zone"):
        read_price_csv(write(tmp_path, [("2023-01-01 00:00:00", 1)]), "DE", "Europe/Atlantis", 1)


@GARBAGE
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_data_import_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"Datetime,Price (EUR/MWh)\n" + data)
    try:
        result = read_price_csv(path, "DE", "Europe/Berlin", 1.0, year=2023)
    except DataImportError:
        return
    # Random bytes are valid only by luck; then the year must still be complete.
    assert result.frame.height == 8760


CELL = st.one_of(
    st.sampled_from(
        [
            "",
            "nan",
            "-1",
            "1e400",
            "2023-03-26 02:00:00",
            "2023-10-29 02:00:00",
            "0001-01-01 00:00:00",
            "9999-12-31 23:00:00",
        ]
    ),
    st.text(max_size=12),
)


@GARBAGE
@given(
    rows=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=6),
    clock=st.sampled_from(["Europe/Berlin", "+09:00", "-05:00"]),
)
def test_garbage_rows_raise_only_data_import_error(
    tmp_path: Path, rows: list[tuple[str, str]], clock: str
) -> None:
    path = tmp_path / "garbage.csv"
    path.write_text("Datetime,Price (EUR/MWh)\n" + "\n".join(f"{a},{b}" for a, b in rows))
    try:
        result = read_price_csv(path, "DE", clock, 1.0, year=2023)
    except DataImportError:
        return
    assert result.frame.height == 8760


# --- flat tariff ---------------------------------------------------------------------------


def test_flat_tariff_quebec() -> None:
    result = flat_tariff("CA-QC", 2023, 65.0, "CAD", 1.4595)
    frame = result.frame
    assert frame.height == 8760 and frame["hour_utc"].is_unique().all()
    assert frame["hour_utc"][0] == z(2023, 1, 1) and frame["hour_utc"][-1] == z(2023, 12, 31, 23)
    assert frame["price_eur_per_mwh"].unique().to_list() == [pytest.approx(65 / 1.4595)]
    assert not frame["estimated"].any()
    assert frame["zone"].unique().to_list() == ["CA-QC"]
    (note,) = result.notes
    assert "65 CAD/MWh at 1 EUR = 1.4595 CAD = 44.5358 EUR/MWh" in note


def test_flat_tariff_leap_year_and_errors() -> None:
    assert flat_tariff("X", 2024, 10, "EUR", 1).frame.height == 8784
    with pytest.raises(InputError, match="use 1"):
        flat_tariff("X", 2023, 10, "EUR", 2)
    with pytest.raises(InputError, match="not a finite number"):
        flat_tariff("X", 2023, math.nan, "CAD", 1.4)
    with pytest.raises(InputError, match="3-letter code"):
        flat_tariff("X", 2023, 10, "C$", 1.4)
    with pytest.raises(InputError) as info:
        flat_tariff("X", 2023, 14596, "CAD", 1.4595)
    assert ("tariff 14596 CAD/MWh is 10000.7 EUR/MWh at 1 EUR = 1.4595 CAD, not between -10000 "
            "and 10000 EUR/MWh — fix: ") in str(info.value)
    assert flat_tariff("X", 2023, 10000, "EUR", 1).frame["price_eur_per_mwh"].max() == 10000
    assert flat_tariff("X", 2023, -10000, "EUR", 1).frame["price_eur_per_mwh"].min() == -10000


# --- writing tables ------------------------------------------------------------------------


def test_write_table_csv_and_parquet(tmp_path: Path) -> None:
    frame = flat_tariff("CA-QC", 2023, 65.0, "CAD", 1.4595).frame
    csv = write_table(frame, tmp_path / "a" / "t.csv")
    lines = csv.read_text().splitlines()
    assert lines[0] == "zone,hour_utc,price_eur_per_mwh,estimated"
    assert lines[1].startswith("CA-QC,2023-01-01T00:00Z,44.535")
    assert lines[-1].startswith("CA-QC,2023-12-31T23:00Z,")
    parquet = write_table(frame, tmp_path / "t.parquet")
    assert pl.read_parquet(parquet).equals(frame)
    with pytest.raises(InputError, match=r"extension '\.json'.*\.csv or \.parquet"):
        write_table(frame, tmp_path / "t.json")


# --- CLI -----------------------------------------------------------------------------------


def test_cli_prices(tmp_path: Path) -> None:
    from gridbridge.cli import app

    src = write(tmp_path, list(zip(local_year(), range(8760), strict=True)), currency="KRW")
    out = tmp_path / "kr.csv"
    args = [
        "data",
        "prices",
        str(src),
        "--zone",
        "KR",
        "--clock",
        "+09:00",
        "--fx",
        "1412.88",
        "--currency",
        "KRW",
        "--year",
        "2023",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 8760 rows (9 estimated)" in result.output
    assert "filled 9 missing hour(s)" in result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 8761
    assert lines[1].startswith("KR,2023-01-01T00:00Z,")
    assert lines[-1].endswith(",true") and "2023-12-31T23:00Z" in lines[-1]


def test_cli_prices_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridbridge.cli import main

    src = write(tmp_path, [("2023-01-01 00:00:00", 1)], currency="SGD")
    with pytest.raises(SystemExit) as info:
        main(
            [
                "data",
                "prices",
                str(src),
                "--zone",
                "SG",
                "--clock",
                "+08:00",
                "--fx",
                "1.45",
                "--currency",
                "EUR",
                "--out",
                str(tmp_path / "o.csv"),
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "prices are in SGD" in err


def test_cli_prices_requires_clock(tmp_path: Path) -> None:
    from gridbridge.cli import app

    src = write(tmp_path, [("2023-01-01 00:00:00", 1)])
    result = CliRunner().invoke(
        app,
        ["data", "prices", str(src), "--zone", "DE", "--fx", "1", "--out", str(tmp_path / "o.csv")],
    )
    assert result.exit_code != 0
    assert "--clock" in result.output


def test_cli_tariff(tmp_path: Path) -> None:
    from gridbridge.cli import app

    out = tmp_path / "qc.parquet"
    args = [
        "data",
        "tariff",
        "--zone",
        "CA-QC",
        "--year",
        "2023",
        "--value",
        "65",
        "--currency",
        "CAD",
        "--fx",
        "1.4595",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 8760 rows (0 estimated)" in result.output
    assert pl.read_parquet(out)["price_eur_per_mwh"][0] == pytest.approx(44.5358, abs=1e-4)


def test_cli_tariff_bad_fx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridbridge.cli import main

    with pytest.raises(SystemExit) as info:
        main(
            [
                "data",
                "tariff",
                "--zone",
                "CA-QC",
                "--year",
                "2023",
                "--value",
                "65",
                "--currency",
                "CAD",
                "--fx",
                "0",
                "--out",
                str(tmp_path / "o.csv"),
            ]
        )
    assert info.value.code == 2
    assert "not a positive finite number" in capsys.readouterr().err

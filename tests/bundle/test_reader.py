"""Reading bundle files: locating tables, CSV and Parquet quirks, errors instead of tracebacks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from gridbridge.bundle import read_bundle
from gridbridge.bundle.reader import read_table
from gridbridge.errors import BundleError
from tests.bundle.conftest import TABLES, Bundle, csv_text, find, problems_of


def to_parquet(bundle: Bundle, table: str, frame: pl.DataFrame | None = None) -> Path:
    """Replace ``<table>.csv`` with ``<table>.parquet`` (the CSV's strings, or ``frame``)."""
    csv_path = bundle.file(table)
    if frame is None:
        frame = pl.read_csv(csv_path, infer_schema=False)
    path = bundle.path / f"{table}.parquet"
    frame.write_parquet(path)
    csv_path.unlink()
    return path


def typed_capacity() -> pl.DataFrame:
    header, *rows = TABLES["capacity"]
    return pl.DataFrame(rows, schema=header, orient="row").with_columns(
        pl.col("hour_utc").str.to_datetime("%Y-%m-%dT%H:%MZ", time_zone="UTC"),
        pl.col("gpus_available").cast(pl.Int64),
        pl.col("ask_eur_per_gpu_hour").cast(pl.Float64),
    )


# ------------------------------------------------------------------------------ locating files


def test_missing_table_file(bundle: Bundle) -> None:
    bundle.file("grid").unlink()
    p = find(problems_of(bundle.path), "grid.csv", None, None, "neither grid.csv nor grid.parquet")
    assert "zone" in p.fix


def test_both_csv_and_parquet(bundle: Bundle) -> None:
    pl.read_csv(bundle.file("capacity"), infer_schema=False).write_parquet(
        bundle.path / "capacity.parquet"
    )
    p = find(problems_of(bundle.path), "capacity.csv", None, None, "both capacity.csv and")
    assert "remove one" in p.fix


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        read_bundle(tmp_path / "nope")
    assert "is not a folder" in str(info.value)


def test_other_files_are_ignored(bundle: Bundle) -> None:
    (bundle.path / "placements.csv").write_text("bid_id\nB1\n")
    (bundle.path / "notes.txt").write_text("hello")
    assert read_bundle(bundle.path).bids.height == 3


# ------------------------------------------------------------------------------ malformed CSV


def test_ragged_rows_are_reported_with_their_row(bundle: Bundle) -> None:
    text = bundle.file("capacity").read_text().splitlines()
    text[3] += ",extra"  # data row 3: one field too many
    text[5] = text[5].rsplit(",", 1)[0]  # data row 5: one too few
    bundle.file("capacity").write_text("\n".join(text) + "\n")
    problems = problems_of(bundle.path)
    find(problems, "capacity.csv", 3, None, "has 6 field(s) but the header has 5")
    p = find(problems, "capacity.csv", 5, None, "has 4 field(s) but the header has 5")
    assert "quote" in p.fix
    # The table is not half-used: no follow-on problems from its cells.
    assert [q.row for q in problems if q.file == "capacity.csv"] == [3, 5]


def test_blank_line_inside_is_ragged_but_trailing_blank_lines_are_fine(bundle: Bundle) -> None:
    path = bundle.file("members")
    path.write_text(path.read_text() + "\n\n")
    read_bundle(bundle.path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], "", lines[2]]) + "\n")
    find(problems_of(bundle.path), "members.csv", 2, None, "(an empty line)")


def test_unclosed_quote(bundle: Bundle) -> None:
    bundle.file("members").write_text('member,name,pledge_share\nKR,"South Korea,0.6\nCA,x,0.4\n')
    p = find(problems_of(bundle.path), "members.csv", None, None, "is not valid CSV")
    assert "double any quote" in p.fix


def test_quoted_commas_and_quotes_are_fine(bundle: Bundle) -> None:
    bundle.set("members", 1, "name", 'Korea, Republic of ("South")')
    market = read_bundle(bundle.path)
    assert 'Korea, Republic of ("South")' in market.members["name"].to_list()


def test_not_utf8(bundle: Bundle) -> None:
    bundle.file("sites").write_bytes(
        bundle.file("sites").read_bytes().replace(b"Suwon", b"S\xfcwon")
    )
    find(
        problems_of(bundle.path), "sites.csv", None, None, "is not UTF-8 text (bad byte on line 2)"
    )


def test_empty_file(bundle: Bundle) -> None:
    bundle.file("gpus").write_text("")
    p = find(problems_of(bundle.path), "gpus.csv", None, None, "is empty")
    assert "gpu_type,it_kw,board_kw" in p.fix


def test_bad_header(bundle: Bundle) -> None:
    bundle.file("gpus").write_text("gpu_type,it_kw,board_kw,it_kw,\nH100,1,1,1,\nA100,1,1,1,\n")
    problems = problems_of(bundle.path)
    find(problems, "gpus.csv", None, "it_kw", "column 'it_kw' appears twice")
    find(problems, "gpus.csv", None, None, "header column 5 has no name")


def test_bom_crlf_and_padded_header(bundle: Bundle) -> None:
    rows = [[h if i else f" {h} " for i, h in enumerate(r)] for r in TABLES["gpus"]]
    text = csv_text([rows[0], *TABLES["gpus"][1:]]).replace("\n", "\r\n")
    bundle.file("gpus").write_bytes(b"\xef\xbb\xbf" + text.encode())
    market = read_bundle(bundle.path)
    assert market.gpus["gpu_type"].to_list() == ["A100", "H100"]


# ------------------------------------------------------------------------------ Parquet


def test_parquet_tables_read_like_csv(bundle: Bundle) -> None:
    for table in ("members", "gpus", "sites", "grid", "bids"):
        to_parquet(bundle, table)  # all-string Parquet
    to_parquet(bundle, "capacity", typed_capacity())  # typed Parquet
    market = read_bundle(bundle.path)
    assert market.capacity.height == 16 and market.capacity.schema["hour_utc"] == pl.Datetime(
        "us", "UTC"
    )


def test_unreadable_parquet(bundle: Bundle) -> None:
    bundle.file("members").unlink()
    (bundle.path / "members.parquet").write_bytes(b"PAR1 this is not parquet")
    p = find(
        problems_of(bundle.path), "members.parquet", None, None, "is not a readable Parquet file"
    )
    assert "CSV" in p.fix


def test_parquet_non_utc_and_naive_times(bundle: Bundle) -> None:
    frame = typed_capacity()
    berlin = frame.with_columns(pl.col("hour_utc").dt.convert_time_zone("Europe/Berlin"))
    to_parquet(bundle, "capacity", berlin)
    p = find(problems_of(bundle.path), "capacity.parquet", 1, "hour_utc", "not UTC")
    assert "+02:00" in p.message
    naive = frame.with_columns(pl.col("hour_utc").dt.replace_time_zone(None))
    naive.write_parquet(bundle.path / "capacity.parquet")
    find(problems_of(bundle.path), "capacity.parquet", 1, "hour_utc", "no time zone")


def test_parquet_sub_hour_times(bundle: Bundle) -> None:
    frame = typed_capacity().with_columns(
        pl.when(pl.int_range(pl.len()) == 2)
        .then(pl.col("hour_utc").dt.offset_by("90s"))
        .otherwise(pl.col("hour_utc"))
        .alias("hour_utc")
    )
    to_parquet(bundle, "capacity", frame)
    find(problems_of(bundle.path), "capacity.parquet", 3, "hour_utc", "not on a whole hour")


def test_parquet_float_counts(bundle: Bundle) -> None:
    frame = typed_capacity().with_columns(pl.col("gpus_available").cast(pl.Float64))
    to_parquet(bundle, "capacity", frame)
    assert read_bundle(bundle.path).capacity["gpus_available"].dtype == pl.Int64  # 8.0 is 8
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(8.5)
        .otherwise(pl.col("gpus_available"))
        .alias("gpus_available"),
        pl.when(pl.int_range(pl.len()) == 1)
        .then(float("nan"))
        .otherwise(pl.col("ask_eur_per_gpu_hour"))
        .alias("ask_eur_per_gpu_hour"),
    )
    frame.write_parquet(bundle.path / "capacity.parquet")
    problems = problems_of(bundle.path)
    find(problems, "capacity.parquet", 1, "gpus_available", "'8.5' is not a whole number")
    find(problems, "capacity.parquet", 2, "ask_eur_per_gpu_hour", "not finite")


def test_parquet_nested_column(bundle: Bundle) -> None:
    frame = typed_capacity().with_columns(pl.concat_list("gpus_available").alias("tags"))
    to_parquet(bundle, "capacity", frame)
    find(problems_of(bundle.path), "capacity.parquet", None, "tags", "cannot hold")


def test_read_table_reports_the_file_it_found(bundle: Bundle) -> None:
    to_parquet(bundle, "gpus")
    frame, name, problems = read_table(bundle.path, "gpus")
    assert name == "gpus.parquet" and problems == [] and frame is not None
    assert frame.schema == {"gpu_type": pl.String, "it_kw": pl.String, "board_kw": pl.String}


def test_parquet_utc_whole_hours_keep_their_value(bundle: Bundle) -> None:
    to_parquet(bundle, "capacity", typed_capacity())
    market = read_bundle(bundle.path)
    assert market.capacity["hour_utc"].min() == datetime(2023, 7, 3, tzinfo=UTC)

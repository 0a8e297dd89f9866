"""Reading a dataset folder for the market maker: typed tables, and every malformed file a
DataImportError naming file, row, field and fix (never a polars traceback)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from gridbridge.errors import DataImportError, NotFoundError
from gridbridge.market.source import read_dataset
from gridbridge.reference import read_facts
from tests.conftest import BRIDGE_2023


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A copy of the shipped dataset's four tables, to break one thing at a time."""
    for name in ("grid.parquet", "sites.csv", "gpus.csv", "members.csv"):
        shutil.copy(BRIDGE_2023 / name, tmp_path / name)
    return tmp_path


def edit(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell (1-based data row) of a CSV file, keeping everything else as written."""
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row - 1)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )
    frame.write_csv(path)


def grid_csv(folder: Path, *rows: str) -> None:
    """Replace the dataset's grid.parquet by a grid.csv with ``rows``."""
    (folder / "grid.parquet").unlink()
    header = "zone,hour_utc,carbon_direct_g_per_kwh,carbon_lifecycle_g_per_kwh,price_eur_per_mwh"
    (folder / "grid.csv").write_text("\n".join([header, *rows]) + "\n")


def error_of(folder: Path) -> str:
    with pytest.raises(DataImportError) as info:
        read_dataset(folder)
    message = str(info.value)
    assert "fix:" in message
    return message


def test_shipped_dataset_is_typed() -> None:
    data = read_dataset(BRIDGE_2023)
    assert data.grid.schema["hour_utc"] == pl.Datetime("us", "UTC")
    assert data.gpus.schema["gpus_per_node"] == pl.Int64
    for column in ("relative_speed", "ref_ask_eur_per_gpu_hour", "it_kw", "board_kw"):
        assert data.gpus.schema[column] == pl.Float64
    for column in ("lat", "lon", "pue", "tariff_adder_eur_per_mwh"):
        assert data.sites.schema[column] == pl.Float64
    assert data.members.schema["pledge_share"] == pl.Float64
    # Other columns are kept as written, an empty cell as a missing value.
    assert data.sites.schema["installed_gpus"] == pl.String
    for column in ("installed_gpus", "pooled_share", "city_note"):
        assert not (data.sites[column] == "").any()


def test_ragged_sites_row(dataset: Path) -> None:
    path = dataset / "sites.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0]  # data row 3 loses two fields
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = error_of(dataset)
    assert f"{path}, row 3: has 15 field(s) but the header has 17" in message
    assert "quote values that contain commas" in message


def test_non_numeric_pue(dataset: Path) -> None:
    path = dataset / "sites.csv"
    edit(path, 2, "pue", "n/a")
    message = error_of(dataset)
    assert f"{path}, row 2, field 'pue': pue 'n/a' is not a number" in message
    assert "PUE" in message  # the fix says what to write


def test_every_bad_cell_of_every_table_is_listed(dataset: Path) -> None:
    edit(dataset / "gpus.csv", 1, "gpus_per_node", "8.5")
    edit(dataset / "gpus.csv", 2, "relative_speed", "0")
    edit(dataset / "members.csv", 3, "pledge_share", "")
    message = error_of(dataset)
    assert message.startswith("3 problems:")
    assert "row 1, field 'gpus_per_node': gpus_per_node '8.5' is not a whole number" in message
    assert "row 2, field 'relative_speed': relative_speed '0' must be > 0" in message
    assert "row 3, field 'pledge_share': pledge_share is empty" in message


def test_missing_column(dataset: Path) -> None:
    frame = pl.read_csv(dataset / "gpus.csv", infer_schema=False).drop("gpus_per_node")
    frame.write_csv(dataset / "gpus.csv")
    message = error_of(dataset)
    assert "field 'gpus_per_node': missing required column(s): gpus_per_node" in message


def test_not_utf8_and_empty(dataset: Path) -> None:
    path = dataset / "members.csv"
    path.write_bytes(path.read_bytes().replace(b"Canada", b"Canad\xe9"))
    (dataset / "gpus.csv").write_text("")
    message = error_of(dataset)
    assert f"{dataset / 'gpus.csv'}: the file is empty" in message
    assert "gpu_type,it_kw,board_kw" in message  # the fix names the header it needs
    assert f"{path}: is not UTF-8 text (bad byte on line 3)" in message


def test_grid_as_csv_with_a_bad_hour(dataset: Path) -> None:
    grid_csv(dataset, "KR,2023-07-03T00:00Z,400,450,100.5", "KR,2023-07-03T01:30Z,400,450,-3")
    message = error_of(dataset)
    where = f"{dataset / 'grid.csv'}, row 2, field 'hour_utc'"
    assert f"{where}: hour_utc '2023-07-03T01:30Z' is not on a whole hour" in message


def test_grid_csv_is_typed(dataset: Path) -> None:
    grid_csv(dataset, "KR,2023-07-03T00:00Z,400,450,100.5")
    grid = read_dataset(dataset).grid
    assert grid.schema["hour_utc"] == pl.Datetime("us", "UTC")
    assert grid.schema["carbon_direct_g_per_kwh"] == pl.Float64
    assert grid["price_eur_per_mwh"].to_list() == [100.5]


def test_unreadable_parquet(dataset: Path) -> None:
    (dataset / "grid.parquet").write_bytes(b"PAR1 this is not parquet")
    message = error_of(dataset)
    assert f"{dataset / 'grid.parquet'}: is not a readable Parquet file" in message


def test_missing_table(dataset: Path) -> None:
    (dataset / "members.csv").unlink()
    with pytest.raises(NotFoundError, match=r"has no members\.csv or members\.parquet"):
        read_dataset(dataset)


def test_malformed_reference_table(tmp_path: Path) -> None:
    path = tmp_path / "facts_manual.csv"
    path.write_text('category,subject,zone,value,unit,source\ngpu_power,"H100,,700,W,x\n')
    with pytest.raises(DataImportError, match="is not valid CSV") as info:
        read_facts(path)
    assert str(path) in str(info.value) and "double any quote" in str(info.value)

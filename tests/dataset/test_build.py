"""The dataset builder: sites and GPUs from reference rows; the shipped dataset is reproducible."""

from __future__ import annotations

import filecmp
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from gridbridge.cli import app
from gridbridge.dataset import build_gpus, build_sites
from gridbridge.errors import DataImportError
from gridbridge.market.source import read_dataset
from gridbridge.recipe import load_recipe
from tests.conftest import BRIDGE_2023, REPO_ROOT, SHARED_DATA

RECIPE = REPO_ROOT / "datasets" / "bridge-2023.toml"


def _top500(**overrides: str) -> pl.DataFrame:
    """A TOP500 extract with the ranks the shipped recipe names (GPU counts made up)."""
    recipe = load_recipe(RECIPE)
    names = {"H100": "NVIDIA H100 SXM5 80GB", "A100": "NVIDIA A100", "GH200": "NVIDIA GH200"}
    rows = [
        {"rank": p.top500_rank, "system_name": f"S{p.top500_rank}", "site": "Lab",
         "country": "X", "accelerator": overrides.get(str(p.top500_rank), names[p.gpu_type]),
         "est_accelerator_count": 1000.0}
        for s in recipe.sites for p in s.pools if p.top500_rank is not None
    ]
    return pl.DataFrame(rows)


def test_pools_are_share_of_installed_rounded_to_nodes() -> None:
    sites = build_sites(load_recipe(RECIPE), _top500())
    row = sites.filter(pl.col("site_id") == "KR-SEJONG-1").row(0, named=True)
    assert row["gpu_pools"] == "A100:144"  # floor(1000 * 0.15 / 8) * 8
    assert row["installed_gpus"] == "A100:1000"
    bristol = sites.filter(pl.col("site_id") == "GB-BRISTOL-1").row(0, named=True)
    assert bristol["gpu_pools"] == "GH200:1088"  # facts' 5,448 installed x 0.20, nodes of 4
    toronto = sites.filter(pl.col("site_id") == "CA-TORONTO-1").row(0, named=True)
    assert toronto["gpu_pools"] == "H100:256" and toronto["zone"] == "CA-ON"
    assert (sites["pue"] == 1.56).all()
    assert sites["site_id"].str.contains(r"^[A-Za-z0-9][A-Za-z0-9._-]*$").all()


def test_a_recipe_that_maps_the_wrong_gpu_family_is_refused() -> None:
    with pytest.raises(DataImportError, match="not A100"):
        build_sites(load_recipe(RECIPE), _top500(**{"50": "AMD Instinct MI300A"}))


def test_gpu_power_from_facts_and_pinned_rules() -> None:
    facts = pl.DataFrame({
        "category": ["gpu_power"] * 6,
        "subject": ["NVIDIA H100 SXM5 80GB", "NVIDIA H100 NVL", "NVIDIA A100 SXM4 80GB",
                    "NVIDIA A100 80GB PCIe", "NVIDIA L40S", "AMD Instinct MI300X (OAM)"],
        "value": ["700", "400", "400", "300", "350", "750"],
        "source": ["s"] * 6,
    })
    gpus = {r["gpu_type"]: r for r in build_gpus(load_recipe(RECIPE), facts).iter_rows(named=True)}
    assert gpus["H100"]["board_kw"] == 0.7 and gpus["H100"]["it_kw"] == 1.275
    assert gpus["A100"]["it_kw"] == 0.8125
    assert gpus["GH200"]["it_kw"] == 1.0
    assert gpus["L40S"]["it_kw"] == pytest.approx(0.6)  # 350 W board + 0.25 kW host share
    assert gpus["MI300X"]["it_kw"] == pytest.approx(1.0)
    with pytest.raises(DataImportError, match="gpu_power rows for 'NVIDIA L40S'"):
        build_gpus(load_recipe(RECIPE), facts.filter(pl.col("subject") != "NVIDIA L40S"))


def test_shipped_dataset_shape() -> None:
    data = read_dataset(BRIDGE_2023)
    assert data.grid.height == 6 * 8760
    counts = data.grid.group_by("zone").agg(pl.col("hour_utc").n_unique().alias("n"))
    assert set(counts["n"]) == {8760}
    assert data.grid["hour_utc"].min().isoformat() == "2023-01-01T00:00:00+00:00"
    assert data.sites.height >= 12 and data.members.height == 5
    assert data.members["pledge_share"].sum() == pytest.approx(1.0)
    size = sum(p.stat().st_size for p in BRIDGE_2023.parent.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024


@pytest.mark.realdata
def test_rebuild_from_public_files_is_byte_identical(tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not here; the rebuild check needs the raw public files")
    result = CliRunner().invoke(app, ["data", "build", "--recipe", str(RECIPE),
                                      "--source", str(SHARED_DATA), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "spring forward" in result.output  # DST handling is reported, not silent
    for name in ("grid.parquet", "sites.csv", "gpus.csv", "members.csv"):
        assert filecmp.cmp(tmp_path / name, BRIDGE_2023 / name, shallow=False), name

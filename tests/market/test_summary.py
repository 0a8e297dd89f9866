"""The market summary on the tiny hand-made bundle: every figure worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridbridge.bundle import read_bundle
from gridbridge.cli import app
from gridbridge.market import summarize
from tests.bundle.conftest import write_valid_bundle


@pytest.fixture
def summary(tmp_path: Path):
    return summarize(read_bundle(write_valid_bundle(tmp_path / "b").path))


def test_headline_figures(summary) -> None:
    assert summary.hours == 4
    assert summary.window == "2023-07-03T00:00Z to 2023-07-03T04:00Z"
    assert (summary.n_members, summary.n_sites, summary.n_bids) == (2, 2, 3)
    # 4 pools offering 8, 16, 24, 32 GPUs over the 4 hours: 4 x 80 GPU-hours.
    assert summary.gpu_hours_offered == 320
    # work = gpus x shortest option: B1 8 x 2, B2 16 x 2, B3 8 x 1.
    assert summary.work_h_demanded == 16 + 32 + 8
    assert summary.value_eur == 900.0


def test_tables(summary) -> None:
    pool = summary.sites.row(0, named=True)
    assert pool["site_id"] == "CA-TORONTO-1" and pool["gpu_type"] == "A100"
    assert (pool["gpus_max"], pool["gpus_min"], pool["gpu_hours"]) == (32, 8, 80)
    assert pool["ask_eur_per_gpu_hour"] == 1.25
    by_type = {r["gpu_type"]: r for r in summary.gpus.iter_rows(named=True)}
    assert by_type["H100"]["sites"] == 2 and by_type["H100"]["gpus_max"] == 64
    zones = {r["zone"]: r for r in summary.zones.iter_rows(named=True)}
    assert zones["KR"]["mean_carbon_direct_g_per_kwh"] == 421.5  # 420..423
    assert zones["KR"]["mean_price_eur_per_mwh"] == 80.5  # 95.5, 85.5, 75.5, 65.5
    assert zones["CA-ON"]["min_price_eur_per_mwh"] == 10.0
    sizes = {r["gpus"]: r for r in summary.bids_by_size.iter_rows(named=True)}
    assert list(sizes) == ["1-8", "9-16"]
    assert (sizes["1-8"]["bids"], sizes["1-8"]["work_h"], sizes["1-8"]["value_eur"]) == (2, 24, 600)
    assert sizes["1-8"]["restricted"] == 1 and sizes["9-16"]["value_eur_per_work_h"] == 9.375


def test_cli_reports_a_bad_bundle_clearly(tmp_path: Path) -> None:
    bundle = write_valid_bundle(tmp_path / "b")
    bundle.set("bids", 2, "gpus", "-8")
    result = CliRunner().invoke(app, ["market", "summary", str(bundle.path)])
    assert result.exit_code != 0
    assert "bids.csv, row 2, field 'gpus'" in str(result.exception) + result.output


def test_cli_validate_warns_about_an_empty_bid_list(tmp_path: Path) -> None:
    bundle = write_valid_bundle(tmp_path / "b")
    bundle.drop_rows("bids", lambda row: False)
    result = CliRunner().invoke(app, ["market", "validate", str(bundle.path)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "is valid: 0 bids" in result.output


def test_console_script_exits_nonzero_with_one_clear_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    bundle = write_valid_bundle(tmp_path / "b")
    bundle.set("grid", 1, "carbon_direct_g_per_kwh", "nan")
    done = subprocess.run([sys.executable, "-m", "gridbridge", "market", "validate",
                           str(bundle.path)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr and "grid.csv, row 1" in done.stderr
    assert "carbon_direct_g_per_kwh" in done.stderr and "fix:" in done.stderr

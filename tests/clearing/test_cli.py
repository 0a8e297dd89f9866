"""``gridbridge clear``, ``check`` and ``frontier`` end to end on real bundle folders."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from gridbridge.cli import main
from tests.conftest import W27, run_cli


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "market"
    main(["market", "make", "--out", str(path), "--sites", "6", "--hours", "48", "--bids", "40"])
    return path


def test_clear_writes_checked_deterministic_files(small_bundle: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["clear", str(small_bundle), "--out", str(tmp_path / "a"),
                            "--time-limit", "30"], capsys)
    assert code == 0, out
    assert "carbon blind greedy" in out and "carbon aware greedy" in out
    for name in ("placements.csv", "rejected.csv", "summary.json", "timings.json"):
        assert (tmp_path / "a" / name).is_file()
    summary = orjson.loads((tmp_path / "a" / "summary.json").read_bytes())
    assert summary["status"] == "optimal"
    assert 0 <= summary["gap"] <= 0.01
    assert summary["accepted"] + summary["rejected"] == 40
    assert set(summary["baselines"]) == {"carbon_blind_greedy", "carbon_aware_greedy"}
    assert summary["seed"] == 0  # the default, said so a run can be repeated with it
    timings = orjson.loads((tmp_path / "a" / "timings.json").read_bytes())
    assert {"build_s", "handover_s", "solve_s", "extract_s"} <= set(timings)

    code, out, _ = run_cli(["check", str(small_bundle), str(tmp_path / "a")], capsys)
    assert code == 0 and "feasible" in out

    code, _, _ = run_cli(["clear", str(small_bundle), "--out", str(tmp_path / "b"),
                          "--time-limit", "30"], capsys)
    assert code == 0
    for name in ("placements.csv", "rejected.csv", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_check_catches_a_tampered_clearing(small_bundle: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["clear", str(small_bundle), "--out", str(tmp_path)], capsys)[0] == 0
    path = tmp_path / "placements.csv"
    frame = pl.read_csv(path)
    assert frame.height > 0
    frame.with_columns(pl.col("emissions_kg") * 0.5).write_csv(path)
    code, _, err = run_cli(["check", str(small_bundle), str(tmp_path)], capsys)
    assert code == 4
    assert "emissions_kg" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--carbon-price", "-1"], "--carbon-price must be between 0 and 100000 EUR per tonne"),
    (["--carbon-price", "100000.5"], "--carbon-price must be between 0 and 100000"),
    (["--emissions-cap", "-5"], "--emissions-cap must be between 0 and 1000000000 tonnes"),
    (["--emissions-cap", "2e9"], "--emissions-cap must be between 0 and 1000000000"),
    (["--mip-gap", "2"], "--mip-gap must be a fraction"),
    (["--time-limit", "0"], "--time-limit must be > 0"),
    (["--search-workers", "0"], "--search-workers must be at least 1"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 2147483647, not -1"),
    (["--seed", "2147483648"], "--seed must be an integer from 0 to 2147483647"),
])
def test_clear_refuses_bad_options(small_bundle: Path, tmp_path: Path, args: list[str],
                                   message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["clear", str(small_bundle), "--out", str(tmp_path), *args], capsys)
    assert code == 2
    assert message in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_clear_refuses_a_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["clear", str(tmp_path / "nope")], capsys)
    assert code != 0 and "error:" in err


def test_check_refuses_a_folder_without_a_clearing(small_bundle: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", str(small_bundle), str(tmp_path)], capsys)
    assert code == 2 and "placements.csv is missing" in err


def test_emissions_cap_from_the_cli(small_bundle: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["clear", str(small_bundle), "--out", str(tmp_path / "free")], capsys)[0] == 0
    free = orjson.loads((tmp_path / "free" / "summary.json").read_bytes())
    cap_t = free["emissions_kg"] / 1000 / 2
    code, out, _ = run_cli(["clear", str(small_bundle), "--out", str(tmp_path / "cap"),
                            "--emissions-cap", str(cap_t)], capsys)
    assert code == 0, out
    capped = orjson.loads((tmp_path / "cap" / "summary.json").read_bytes())
    assert capped["emissions_kg"] <= cap_t * 1000 + 1e-6
    assert capped["emissions_cap_kg"] == pytest.approx(cap_t * 1000)
    assert run_cli(["check", str(small_bundle), str(tmp_path / "cap")], capsys)[0] == 0


def test_seed_reaches_the_solve_and_summary(small_bundle: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["clear", str(small_bundle), "--out", str(tmp_path),
                            "--seed", "2147483647"], capsys)
    assert code == 0, out
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["seed"] == 2147483647
    assert run_cli(["check", str(small_bundle), str(tmp_path)], capsys)[0] == 0
    code, _, err = run_cli(["frontier", str(small_bundle), "--carbon-prices", "0",
                            "--out", str(tmp_path / "f"), "--seed", "-3"], capsys)
    assert code == 2 and "--seed must be an integer from 0 to 2147483647" in err
    assert not (tmp_path / "f").exists()


def test_frontier_writes_one_row_per_price_and_method(small_bundle: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["frontier", str(small_bundle), "--carbon-prices", "0,400,3200",
                            "--out", str(tmp_path)], capsys)
    assert code == 0, out
    frame = pl.read_csv(tmp_path / "frontier.csv")
    assert frame.height == 9
    assert set(frame["method"]) == {"optimum", "carbon_blind_greedy", "carbon_aware_greedy"}
    code, _, err = run_cli(["frontier", str(small_bundle), "--carbon-prices", "0,x"], capsys)
    assert code == 2 and "--carbon-prices" in err
    for bad in ("0,-5", "0,1e6", "nan"):
        code, _, err = run_cli(["frontier", str(small_bundle), "--carbon-prices", bad], capsys)
        assert code == 2 and "--carbon-prices" in err and "between 0 and 100000" in err, bad


@pytest.mark.slow
def test_bundled_market_clears_and_passes_check(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["clear", str(W27), "--out", str(tmp_path), "--time-limit", "5"], capsys)
    assert code == 0, out
    assert run_cli(["check", str(W27), str(tmp_path)], capsys)[0] == 0
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["bound_eur"] >= summary["welfare_eur"]
    blind = summary["baselines"]["carbon_blind_greedy"]["welfare_eur"]
    assert summary["welfare_eur"] >= blind

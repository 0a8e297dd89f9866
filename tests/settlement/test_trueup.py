"""Metered true-up on the hand-worked example: records, correction lines, refusals."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from gridbridge.bundle import write_bundle
from gridbridge.errors import InputError
from gridbridge.settlement.trueup import read_metering
from tests.conftest import run_cli
from tests.databases import Databases
from tests.settlement.test_hand_example import example


@pytest.fixture()
def cleared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    bundle = write_bundle(example().market(), tmp_path / "market")
    code, out, err = run_cli(["clear", str(bundle), "--out", str(tmp_path / "out"),
                              "--time-limit", "10"], capsys)
    assert code == 0, out + err
    return tmp_path / "out"


def metering(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_trueup_posts_corrections_for_metered_energy_and_intensity(
        cleared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # B2 drew 5 kWh instead of 4 at 600 g/kWh instead of 500: energy 0.50 EUR instead of
    # 0.40 (+10 cents to site A), emissions 3.0 kg instead of 2.0 (+1 kg: +10 cents to the
    # carbon fund at 100 EUR/t). B3 drew exactly its forecast: no lines.
    file = metering(tmp_path / "m.csv", "bid_id,hour_utc,energy_kwh,carbon_g_per_kwh\n"
                    "B2,2023-07-03T00:00Z,5.0,600\nB3,2023-07-03T00:00Z,4.0,\n")
    before = pl.read_csv(cleared / "ledger.csv")
    code, out, err = run_cli(["trueup", str(cleared), str(file)], capsys)
    assert code == 0, out + err
    _, batch = read_metering(file)
    records = pl.read_csv(cleared / f"trueup-{batch}.csv")
    b2 = records.filter(pl.col("bid_id") == "B2").row(0, named=True)
    assert (b2["forecast_kwh"], b2["actual_kwh"], b2["difference_kwh"]) == (4.0, 5.0, 1.0)
    assert b2["difference_kg"] == pytest.approx(1.0)
    assert b2["difference_energy_cost_eur"] == pytest.approx(0.10)
    assert b2["difference_carbon_fee_eur"] == pytest.approx(0.10)
    b3 = records.filter(pl.col("bid_id") == "B3").row(0, named=True)
    assert b3["difference_kwh"] == 0.0 and b3["difference_carbon_fee_eur"] == 0.0
    after = pl.read_csv(cleared / "ledger.csv")
    assert after.head(before.height).equals(before)  # append-only
    new = after.tail(after.height - before.height)
    assert [(r["bid_id"], r["account"], r["kind"], r["amount_cents"])
            for r in new.iter_rows(named=True)] == [
        ("B2", "member:DE", "correction", -10), ("B2", "site:A", "correction", 10),
        ("B2", "member:DE", "correction", -10), ("B2", "alliance:carbon-fund", "correction", 10),
    ]
    round_id = orjson.loads((cleared / "summary.json").read_bytes())["round_id"]
    assert new["posting_id"][0] == f"{round_id}:{batch}:000001"
    assert int(after["amount_cents"].sum()) == 0

    code, _, err = run_cli(["trueup", str(cleared), str(file)], capsys)
    assert code == 5 and "already posted" in err
    assert pl.read_csv(cleared / "ledger.csv").equals(after)


@pytest.mark.parametrize(("text", "field"), [
    ("bid_id,hour_utc\nB2,2023-07-03T00:00Z\n", "energy_kwh"),
    ("bid_id,hour_utc,energy_kwh\nB2,2023-07-03T00:00Z,-1\n", "energy_kwh"),
    ("bid_id,hour_utc,energy_kwh\nB2,2023-07-03T00:00Z,NaN\n", "energy_kwh"),
    ("bid_id,hour_utc,energy_kwh\nB2,2023-07-03T00:30Z,4\n", "hour_utc"),
    ("bid_id,hour_utc,energy_kwh\nB2,2023-07-03T00:00Z,4\nB2,2023-07-03T00:00Z,4\n",
     "hour_utc"),
    ("bid_id,hour_utc,energy_kwh,carbon_g_per_kwh\nB2,2023-07-03T00:00Z,4,-5\n",
     "carbon_g_per_kwh"),
    ("bid_id,hour_utc,energy_kwh\nB1,2023-07-03T00:00Z,4\n", "bid_id"),  # B1 was rejected
    ("bid_id,hour_utc,energy_kwh\nB2,2023-07-03T01:00Z,4\n", "hour_utc"),  # after its end
])
def test_bad_metering_is_refused_and_changes_nothing(
        cleared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
        field: str) -> None:
    before = (cleared / "ledger.csv").read_bytes()
    code, out, err = run_cli(["trueup", str(cleared), str(metering(tmp_path / "bad.csv", text))],
                             capsys)
    assert code == 2, out + err
    assert f"'{field}'" in err and "fix:" in err
    assert (cleared / "ledger.csv").read_bytes() == before
    assert not list(cleared.glob("trueup-*.csv"))


def test_missing_metering_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_metering(tmp_path / "nope.csv")


def test_trueup_posts_the_batch_to_the_ledger_database_once(
        cleared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        databases: Databases) -> None:
    from gridbridge.ledger import Ledger

    url = databases.fresh("trueup")
    assert run_cli(["ledger", "post", str(cleared), "--db", url], capsys)[0] == 0
    file = metering(tmp_path / "m.csv", "bid_id,hour_utc,energy_kwh\nB3,2023-07-03T00:00Z,3.0\n")
    code, out, err = run_cli(["trueup", str(cleared), str(file), "--db", url], capsys)
    assert code == 0, out + err
    round_id = orjson.loads((cleared / "summary.json").read_bytes())["round_id"]
    with Ledger.open(url) as ledger:
        stored = ledger.postings(round_id)
        # B3 drew 3 kWh of its 4: 0.10 EUR less energy, 0.5 kg less, 0.05 EUR less fee.
        corrections = stored.filter(pl.col("kind") == "correction")
        assert sorted(corrections["amount_cents"].to_list()) == [-10, -5, 5, 10]
        assert int(stored["amount_cents"].sum()) == 0
        assert stored.equals(pl.read_csv(cleared / "ledger.csv", schema=stored.schema)
                             .sort("posting_id"))
    code, _, err = run_cli(["trueup", str(cleared), str(file), "--db", url], capsys)
    assert code == 5 and "already posted" in err


def test_reports_show_forecast_actual_and_difference(
        cleared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridbridge.reports import build_reports

    assert build_reports(cleared)["metering"].height == 0
    file = metering(tmp_path / "m.csv", "bid_id,hour_utc,energy_kwh\nB3,2023-07-03T00:00Z,3.0\n")
    assert run_cli(["trueup", str(cleared), str(file)], capsys)[0] == 0
    tables = build_reports(cleared)
    rows = tables["metering"].rows(named=True)
    assert [(r["bid_id"], r["forecast_kwh"], r["actual_kwh"], r["difference_kwh"])
            for r in rows] == [("B3", 4.0, 3.0, -1.0)]
    assert rows[0]["batch_id"] == read_metering(file)[1]
    ca = tables["member_totals"].filter(pl.col("member") == "CA").row(0, named=True)
    assert ca["correction_eur"] == pytest.approx(0.15)  # 0.10 energy + 0.05 fee back to CA

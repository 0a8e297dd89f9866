"""The importers over the real 2023 files in ``../shared/data`` (skipped when absent).

Checks against ``SOURCES.md``: 8,760 unique UTC hours per zone, the annual means of its
table, and Electricity Maps' count of estimated hours per zone.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from gridbridge.importers.electricitymaps import read_electricitymaps_csv
from gridbridge.importers.prices import read_price_csv

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} does not exist"),
]

# file stem -> (zone, mean direct, mean lifecycle, hours flagged estimated by the source)
CARBON = {
    "KR": ("KR", 378.2, 439.7, 57),
    "SG": ("SG", 369.2, 488.1, 736),
    "CA-ON": ("CA-ON", 46.9, 72.8, 13),
    "CA-QC": ("CA-QC", 1.7, 30.7, 309),
    "GB": ("GB", 128.6, 187.5, 20),
    "DE-LU": ("DE", 307.7, 367.0, 30),
}
# file stem -> (zone, clock, currency, 1 EUR = fx local, mean local price per MWh)
PRICES = {
    "KR": ("KR", "+09:00", "KRW", 1412.88, 163267.0),
    "SG": ("SG", "+08:00", "SGD", 1.4523, 247.6),
    "CA-ON": ("CA-ON", "-05:00", "CAD", 1.4595, 28.6),
    "GB": ("GB", "Europe/London", "EUR", 1.0, 107.9),
    "DE-LU": ("DE", "Europe/Berlin", "EUR", 1.0, 95.2),
}


def assert_full_year(frame: pl.DataFrame, zone: str) -> None:
    assert frame.height == 8760
    assert frame["hour_utc"].is_unique().all()
    assert frame["hour_utc"].is_sorted()
    assert frame["zone"].unique().to_list() == [zone]
    assert frame.null_count().sum_horizontal().item() == 0


@pytest.mark.parametrize("stem", list(CARBON))
def test_carbon_2023(stem: str) -> None:
    zone, direct, lifecycle, estimated = CARBON[stem]
    path = DATA / "carbon_intensity" / f"{stem}_2023_hourly.csv"
    result = read_electricitymaps_csv(path, year=2023)
    frame = result.frame
    assert_full_year(frame, zone)
    assert frame["carbon_direct_g_per_kwh"].mean() == pytest.approx(direct, abs=0.1)
    assert frame["carbon_lifecycle_g_per_kwh"].mean() == pytest.approx(lifecycle, abs=0.1)
    # The files are complete, so nothing is filled: every estimated hour is the source's.
    assert frame["estimated"].sum() == estimated
    assert not any("filled" in note for note in result.notes)


@pytest.mark.parametrize("stem", list(PRICES))
def test_prices_2023(stem: str) -> None:
    zone, clock, currency, fx, mean_local = PRICES[stem]
    path = DATA / "prices" / f"{stem}_electricity_prices_2023.csv"
    result = read_price_csv(path, zone, clock, fx, currency=currency, year=2023)
    frame = result.frame
    assert_full_year(frame, zone)
    # Edge filling and DST drops move the mean a little; the local-currency mean still holds.
    assert frame["price_eur_per_mwh"].mean() * fx == pytest.approx(mean_local, rel=0.01)
    assert frame["estimated"].sum() <= 9  # only year-edge and fall-back hours are filled


def test_real_dst_handling() -> None:
    """DE and GB files hold 8,760 local rows: the spring gap is a copy, the autumn hour once."""
    for stem, clock, gap, neighbour in [
        ("DE-LU", "Europe/Berlin", "2023-03-26 02:00", "03:00"),
        ("GB", "Europe/London", "2023-03-26 01:00", "02:00"),
    ]:
        path = DATA / "prices" / f"{stem}_electricity_prices_2023.csv"
        notes = read_price_csv(path, "X", clock, 1.0, year=2023).notes
        text = " ".join(notes)
        assert f"{gap} does not exist" in text
        assert f"duplicated the {neighbour} hour's" in text
        assert "occurs once" in text
        assert "2023-10-29T01:00Z" in text

"""The dataset recipe: the shipped one loads; mistakes are named with their section."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbridge.errors import InputError, NotFoundError
from gridbridge.recipe import load_recipe
from tests.conftest import REPO_ROOT

RECIPE = REPO_ROOT / "datasets" / "bridge-2023.toml"


def test_shipped_recipe_loads() -> None:
    recipe = load_recipe(RECIPE)
    assert recipe.year == 2023
    assert set(recipe.zones) == {"KR", "SG", "CA-ON", "CA-QC", "GB", "DE"}
    assert set(recipe.members) == {"KR", "CA", "GB", "DE", "SG"}
    assert len(recipe.sites) >= 12
    assert recipe.fx("KRW") == 1412.88 and recipe.fx("SGD") == 1.4523
    assert recipe.fx("CAD") == 1.4595
    assert recipe.zones["CA-QC"].flat_price == 65.0
    assert recipe.zones["GB"].clock == "Europe/London"
    assert recipe.zones["CA-ON"].clock == "-05:00"


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = RECIPE.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "recipe.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('site_id = "KR-SUWON-1"', 'site_id = "KR SUWON/1"', "URL-safe slug"),
        ('zone = "KR"\ncity = "Suwon"', 'zone = "XX"\ncity = "Suwon"', "zone 'XX' is not in"),
        ("pledge_share = 0.14", "pledge_share = 0.15", "sum to 1"),
        ("pledge_share = 0.14", "pledge_share = 1.4", r"\[0, 1\]"),
        ('flat_price = 65.0', 'flat_price = 65.0\nprice = "x.csv"', "exactly one of"),
        ('timezone = "Asia/Seoul"', 'timezone = "Mars/Olympus"', "not an IANA time zone"),
        ("pooled_share = 0.15 }", "pooled_share = 0 }", r"pooled_share must be in \(0, 1\]"),
        ('gpu_type = "A100", top500_rank = 50', 'gpu_type = "B200", top500_rank = 50',
         "GPU type 'B200' is not in"),
        ("relative_speed = 1.0\n", "relative_speed = 1.0\nspeedup = 2\n", "unknown key"),
        ("year = 2023", "year = [", "not valid TOML"),
        ("tariff_adder_eur_per_mwh = 20.0", "tariff_adder_eur_per_mwh = 20000.0",
         "tariff_adder_eur_per_mwh must be between -10000 and 10000 EUR/MWh"),
        ("tariff_adder_eur_per_mwh = 20.0", "tariff_adder_eur_per_mwh = nan",
         "tariff_adder_eur_per_mwh. must be a finite number"),
    ],
)
def test_recipe_mistakes_are_named(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_recipe(_variant(tmp_path, old, new))


def test_missing_recipe(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_recipe(tmp_path / "nope.toml")

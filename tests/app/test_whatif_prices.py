"""The what-if sweep's carbon prices: parsed like ``gridbridge frontier --carbon-prices``."""

from __future__ import annotations

import pytest

from gridbridge.appdata.whatif import parse_prices
from gridbridge.errors import InputError


def test_prices_are_parsed_with_commas_or_semicolons() -> None:
    assert parse_prices("0, 100;400,, 1600") == [0.0, 100.0, 400.0, 1600.0]
    assert parse_prices("100000") == [100000.0]


@pytest.mark.parametrize(("text", "message"), [
    ("0, x", "write numbers separated by commas"),
    ("", "give one or more carbon prices"),
    ("0, -1", r"\(-1 is not\)"),
    ("100001", r"between 0 and 100000 EUR per tonne CO2eq \(100001 is not\)"),
    ("inf", "inf is not"),
])
def test_bad_prices_name_the_field_and_the_bounds(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        parse_prices(text)
    assert str(err.value).startswith("carbon prices:")

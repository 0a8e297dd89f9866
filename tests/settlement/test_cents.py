"""The ledger's one rounding rule, and the amounts it refuses."""

from __future__ import annotations

import math

import pytest

from gridbridge.errors import LedgerError
from gridbridge.settlement.postings import cents


@pytest.mark.parametrize(("eur", "expected"), [
    (0.0, 0), (1.005, 100), (1.015, 102), (-2.345, -234), (12.34567, 1235), (1e20, 10**22)])
def test_cents_round_half_to_even_from_the_ten_thousandth(eur: float, expected: int) -> None:
    assert cents(eur) == expected


@pytest.mark.parametrize("eur", [math.nan, math.inf, -math.inf, 1e300, -1e30])
def test_amounts_the_ledger_cannot_hold_are_a_ledger_error(eur: float) -> None:
    with pytest.raises(LedgerError, match=r"cannot be posted.*fix"):
        cents(eur)

"""The skip-or-fail rule for parts PyPI cannot install (CI sets GRIDBRIDGE_REQUIRE_ALL=1)."""

from __future__ import annotations

import pytest

from tests.conftest import require_part


def test_missing_part_skips_on_a_plain_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDBRIDGE_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not available; apt-get"):
        require_part(False, "chromium", "apt-get install chromium")


@pytest.mark.parametrize("flag", ["1", "yes"])
def test_missing_part_fails_under_require_all(monkeypatch: pytest.MonkeyPatch, flag: str) -> None:
    monkeypatch.setenv("GRIDBRIDGE_REQUIRE_ALL", flag)
    with pytest.raises(pytest.fail.Exception, match="GRIDBRIDGE_REQUIRE_ALL=1 but chromium"):
        require_part(False, "chromium", "apt-get install chromium")


def test_present_part_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBRIDGE_REQUIRE_ALL", "1")
    require_part(True, "chromium", "apt-get install chromium")

"""Fixtures for the app's tests: a small cleared bundle (W27's first day, cleared by the real
CLI), a real exchange where every site reported W27's first two days and one round was
cleared, and AppTest runners for either mode with the downloads' bytes kept readable.

Everything starts once per session: the tests of every page share them, and nothing a test
does to them (a draft bid, a new round) changes what another test asserts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from gridbridge.appdata.config import BUNDLE, CLEARING, EXCHANGE, TOKEN
from gridbridge.appdata.window import restrict_window
from gridbridge.bundle import read_bundle, write_bundle
from gridbridge.cli import main
from tests.conftest import REPO_ROOT, W27
from tests.exchange.conftest import (
    Exchange,
    _bid,
    _open,
    _wait_until_done,
    market_serving,
)
from tests.exchange.server import sqlite_url

ENTRY = REPO_ROOT / "apps" / "gridbridge_app.py"
#: AppTest's time limit per run (s): generous, a what-if solves inside a run.
RUN_TIMEOUT_S = 90


def cli(*args: str) -> None:
    """Run ``gridbridge ARGS`` in-process; fail the fixture if it fails."""
    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code, f"gridbridge {' '.join(args)} exited with {exc.code}"


@dataclass(frozen=True)
class SmallBundle:
    """W27 limited to its first day (39 bids fit), cleared and reported by the CLI."""

    bundle: Path
    clearing: Path
    reports: Path  # gridbridge report's files: every table as CSV and Parquet, the workbook


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> SmallBundle:
    folder = tmp_path_factory.mktemp("bundle")
    market = read_bundle(W27)
    start = market.config.window_start_utc
    day, _excluded = restrict_window(market, start, start + timedelta(hours=24))
    bundle = write_bundle(day, folder / "market-W27-day1")
    clearing, reports = folder / "clearing", folder / "reports"
    cli("clear", str(bundle), "--out", str(clearing), "--time-limit", "5")
    for fmt in ("csv", "parquet", "xlsx"):
        cli("report", str(clearing), "--format", fmt, "--out", str(reports))
    return SmallBundle(bundle, clearing, reports)


@dataclass
class AppExchange:
    """The session's exchange, its tokens (tests.exchange.server's plus one per site) and the
    round every site's telemetry fed, cleared with five bids (one withdrawn)."""

    exchange: Exchange
    cleared: str

    def client(self, who: str) -> Any:
        return self.exchange.client(who)

    @property
    def url(self) -> str:
        return self.exchange.server.base_url

    def token(self, who: str) -> str:
        return self.exchange.tokens[who]


#: The bids of the session's cleared round: (token name, bid id, fields unlike bid_body's).
CLEARED_BIDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("member_kr", "kr-big", {"gpus": 24, "value_eur": 60000.0,
                             "options": [{"gpu_type": "H100", "hours": 24}]}),
    ("member_kr", "kr-small", {"gpus": 8, "value_eur": 9000.0}),
    ("member_kr", "kr-gone", {"gpus": 8, "value_eur": 9000.0}),  # withdrawn before closing
    ("member_de", "de-big", {"gpus": 16, "value_eur": 30000.0,
                             "allowed_jurisdictions": ["DE", "GB"]}),
    ("member_de", "de-cheap", {"gpus": 16, "value_eur": 1.0}),
)


@pytest.fixture(scope="session")
def app_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppExchange]:
    folder = tmp_path_factory.mktemp("app-exchange")
    with market_serving(sqlite_url(folder / "exchange.db"), folder) as running:
        round_id = _open(running)
        for who, bid_id, changes in CLEARED_BIDS:
            _bid(running, who, round_id, bid_id, **changes)
        assert running.client("member_kr").delete(
            f"/v1/rounds/{round_id}/bids/kr-gone").status_code == 200
        assert running.client("planner").post(f"/v1/rounds/{round_id}/close").status_code == 200
        assert _wait_until_done(running, round_id)["state"] == "cleared"
        yield AppExchange(running, round_id)


class MediaKept(MemoryMediaFileStorage):
    """AppTest's in-memory media store, kept reachable so a test can read what a download
    button serves (AppTest makes a fresh one per run and drops it)."""

    latest: MediaKept | None = None

    def __init__(self, media_endpoint: str) -> None:
        super().__init__(media_endpoint)
        MediaKept.latest = self


def served(url: str) -> bytes:
    """The bytes a download button's ``url`` serves, from the last run's media store."""
    assert MediaKept.latest is not None, "no AppTest run kept its media"
    return bytes(MediaKept.latest.get_file(url.rsplit("/", 1)[1]).content)


Runner = Callable[[str], AppTest]


def _runner(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Runner:
    for name in (EXCHANGE, TOKEN, BUNDLE, CLEARING):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", MediaKept)

    def run(page: str) -> AppTest:
        at = AppTest.from_file(str(ENTRY), default_timeout=RUN_TIMEOUT_S)
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        return at

    return run


@pytest.fixture
def bundle_app(small_bundle: SmallBundle, monkeypatch: pytest.MonkeyPatch) -> Runner:
    """Runs a page of the app in bundle mode on :func:`small_bundle`."""
    return _runner(monkeypatch, {BUNDLE: str(small_bundle.bundle),
                                 CLEARING: str(small_bundle.clearing)})


@pytest.fixture
def exchange_app(app_exchange: AppExchange,
                 monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Runner]:
    """``exchange_app(who)`` runs pages against the session's exchange with ``who``'s token."""
    def as_(who: str) -> Runner:
        return _runner(monkeypatch, {EXCHANGE: app_exchange.url,
                                     TOKEN: app_exchange.token(who)})
    return as_

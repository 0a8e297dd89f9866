"""End to end in a real browser: ``gridbridge app`` serves the app against a real exchange,
Debian's headless Chromium (driven by Playwright, never Playwright's own browsers) opens every
page, no Streamlit error or traceback is shown, and a screenshot of each page is saved under
build/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import AppExchange
from tests.conftest import REPO_ROOT, require_part
from tests.exchange.server import free_port

SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
#: url path, the page's title, an element the page must show (Streamlit's test ids).
#: The Market page comes first: opened by its URL on a fresh server, it must still be routed
#: by the entry file's navigation.
PAGES = (("market", "Market", "stVegaLiteChart"), ("bids", "Bids", "stDataFrame"),
         ("settlements", "Settlements", "stDownloadButton"),
         ("", "Alliance", "stDeckGlJsonChart"))
# Without a GPU, WebGL (the map) runs on SwiftShader, which Chromium only allows when asked.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run",
                 "--metrics-recording-only", "--disable-dev-shm-usage"]


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, with Playwright to drive it; skips (fails in CI) without them."""
    found = shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    require_part(found is not None, "Debian's chromium with the playwright package",
                 "install them: apt-get install chromium, then pip install -e '.[dev]'")
    assert found is not None
    return found


def _healthy(address: str) -> bool:
    try:
        return httpx.get(f"{address}/_stcore/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served_app(app_exchange: AppExchange, tmp_path: Path) -> Iterator[str]:
    """``gridbridge app --exchange URL --token T`` as the planner; its printed address."""
    port = free_port()
    path = tmp_path / "app.log"
    # The server appends to its own handle; the test reads the file afresh. Reading through
    # the handle the server writes to shares its offset: a seek(0) there made the server
    # write over the log's first line, the address the test waits for.
    log = path.open("a")
    process = subprocess.Popen(
        [sys.executable, "-m", "gridbridge", "app", "--exchange", app_exchange.url,
         "--token", app_exchange.token("planner"), "--port", str(port)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        address = None
        while time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"GridBridge app on (http://127\.0\.0\.1:\d+)", path.read_text())
            if found and _healthy(found.group(1)):
                address = found.group(1)
                break
            time.sleep(0.2)
        assert address == f"http://127.0.0.1:{port}", f"the app did not start:\n{path.read_text()}"
        yield address
    finally:
        process.terminate()  # the Streamlit server itself: gridbridge app execs it
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_every_page_in_headless_chromium(chromium: str, request: pytest.FixtureRequest) -> None:
    # Asked for only now: without chromium the test skips before starting any server.
    served_app: str = request.getfixturevalue("served_app")
    app_exchange: AppExchange = request.getfixturevalue("app_exchange")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                     env={**os.environ, "TZ": "UTC"})
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, title, shown in PAGES:
                page.goto(f"{served_app}/{path}?round={app_exchange.cleared}")
                page.get_by_role("heading", name=title, level=1).wait_for(timeout=30_000)
                # Streamlit shows its status widget while the script runs.
                page.wait_for_function(
                    "!document.querySelector('[data-testid=\"stStatusWidget\"]')",
                    timeout=60_000)
                # Streamlit scrolls inside its main block, not the page: grow the window to
                # the block's height (until drawing the charts no longer grows it) so the
                # screenshot holds the whole page.
                height = 0
                for _ in range(6):
                    page.wait_for_timeout(700)
                    grown = int(page.evaluate(
                        "document.querySelector('[data-testid=\"stMain\"]').scrollHeight"))
                    if grown == height:
                        break
                    height = grown
                    page.set_viewport_size({"width": 1400, "height": min(height + 40, 12000)})
                page.screenshot(path=str(SCREENSHOTS / f"{title.lower()}.png"))
                page.set_viewport_size({"width": 1400, "height": 1000})
                errors = page.locator("[data-testid='stException'], [data-testid='stAlert"
                                      "ContentError']")
                assert errors.count() == 0, f"{title}: {errors.all_inner_texts()}"
                text = page.locator("[data-testid='stMain']").inner_text()
                assert "Traceback" not in text, f"{title}: {text[:2000]}"
                assert page.locator(f"[data-testid='{shown}']").count() > 0, (title, shown)
                navigation = page.locator("[data-testid='stSidebarNav']").inner_text()
                assert all(t in navigation for _, t, _ in PAGES), navigation
        finally:
            browser.close()
    for _, title, _ in PAGES:
        assert (SCREENSHOTS / f"{title.lower()}.png").stat().st_size > 10_000

"""The app in-process (httpx's ASGI transport): the injected clock, answers when the
database fails, and the refusal to build an app on a database without the exchange."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gridbridge.errors import ExchangeError
from gridbridge.exchange import schema as t
from gridbridge.exchange.app import create_app
from tests.databases import Databases
from tests.exchange.server import SITE, init_exchange, query, sqlite_url, telemetry

FIXED = datetime(2023, 7, 2, 23, 7, 30, 250000, tzinfo=UTC)


def _call(app: Any, method: str, path: str, token: str | None = None,
          **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://exchange", headers=headers) as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(go())


@pytest.fixture
def setup(databases: Databases) -> tuple[str, dict[str, str]]:
    url = databases.fresh("app")
    return url, init_exchange(url)


def test_the_clock_stamps_what_is_stored(setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    app = create_app(url, clock=lambda: FIXED)
    answer = _call(app, "POST", f"/v1/sites/{SITE}/telemetry", tokens["site"],
                   json=telemetry("clocked"))
    assert answer.status_code == 201
    received = query(url, sa.select(t.telemetry_reports.c.received_at_utc))
    assert [r[0] for r in received] == ["2023-07-02T23:07:30.250Z"]
    audited = query(url, sa.select(t.audit.c.at_utc, t.audit.c.status))
    assert [tuple(r) for r in audited] == [("2023-07-02T23:07:30.250Z", 201)]
    app.state.store.close()


def test_a_failing_database_answers_503(setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    app = create_app(url)
    assert _call(app, "GET", "/healthz").json() == {"status": "ok"}
    # PostgreSQL drops the foreign keys that point at it only when told to.
    cascade = " CASCADE" if url.startswith("postgresql") else ""
    query(url, sa.text(f"DROP TABLE exchange_rounds{cascade}"))
    answer = _call(app, "GET", "/v1/rounds", tokens["planner"])
    assert answer.status_code == 503
    assert "exchange_rounds" in answer.json()["detail"] and "fix" in answer.json()["detail"]
    query(url, sa.text("DELETE FROM schema_version"))
    health = _call(app, "GET", "/healthz")
    assert health.status_code == 503 and "exchange init" in health.json()["detail"]
    app.state.store.close()


def test_no_app_on_a_database_without_the_exchange(tmp_path: Path) -> None:
    with pytest.raises(ExchangeError, match="does not exist"):
        create_app(sqlite_url(tmp_path / "nothing.db"))
    assert not (tmp_path / "nothing.db").exists()


def test_an_unexpected_error_answers_500_with_the_request_id(
        setup: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from gridbridge.exchange import api_rounds

    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug")

    url, tokens = setup
    monkeypatch.setattr(api_rounds, "open_round", broken)
    app = create_app(url)
    answer = _call(app, "POST", "/v1/rounds", tokens["planner"],
                   json={"window_start_utc": "2023-07-03T00:00Z",
                         "window_end_utc": "2023-07-04T00:00Z",
                         "carbon_price_eur_per_t": 0, "carbon_signal": "direct"})
    assert answer.status_code == 500
    request_id = answer.headers["x-request-id"]
    assert request_id in answer.json()["detail"] and "a bug" not in answer.text
    audited = query(url, sa.select(t.audit.c.status).where(t.audit.c.request_id == request_id))
    assert [r[0] for r in audited] == [500]
    app.state.store.close()

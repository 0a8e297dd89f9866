"""One real exchange server for the exchange tests (started once per session: each start
costs about two seconds); tests that kill or restart a server start their own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import create_token, revoke_token
from tests.exchange.server import Server, init_exchange, round_body, sqlite_url


@dataclass
class Exchange:
    """The running server, its database URL and a token per role name (plus ``revoked``)."""

    server: Server
    db_url: str
    tokens: dict[str, str]
    _clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def client(self, who: str | None = None) -> httpx.Client:
        """The session's client sending the token named ``who`` (none when None); kept open,
        because making an httpx client (its TLS context) costs tens of milliseconds."""
        if who not in self._clients:
            self._clients[who] = self.server.client(self.tokens[who] if who else None)
        return self._clients[who]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture(scope="session")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    folder = tmp_path_factory.mktemp("exchange")
    url = sqlite_url(folder / "exchange.db")
    tokens = init_exchange(url)
    with ExchangeStore.open(url) as store:
        info, secret = create_token(store, "admin", None, datetime.now(UTC))
        revoke_token(store, info.token_id, datetime.now(UTC))
    tokens["revoked"] = secret
    server = Server(url, folder / "server.log").start()
    running = Exchange(server, url, tokens)
    try:
        yield running
    finally:
        running.close()
        server.stop()


@pytest.fixture(scope="session")
def open_round(exchange: Exchange) -> str:
    """The id of a round opened by the planner (open, a week from 2023-07-03)."""
    answer = exchange.client("planner").post("/v1/rounds", json=round_body())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["round_id"])

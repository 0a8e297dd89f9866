"""The app's HTTP client of the exchange (``httpx``), and who its token belongs to.

Every refusal becomes :class:`ExchangeRefused` with the exchange's own message (a 422's
field errors as ``field: message`` lines, exactly as :func:`~gridbridge.appdata.bidform.
field_messages` writes the form's); an exchange that cannot be reached becomes
:class:`ExchangeUnreachable` saying how to fix it. The transport is injectable (httpx's
``transport``), the clock is the exchange's.

:func:`probe_viewer` asks the exchange whom the token speaks for (``GET /v1/whoami``).
"""

from __future__ import annotations

from typing import Any

import httpx

from gridbridge.appdata.bidform import field_messages
from gridbridge.appdata.model import Viewer
from optim.errors import GridBridgeError

__all__ = ["ExchangeClient", "ExchangeRefused", "ExchangeUnreachable", "probe_viewer"]

class ExchangeRefused(GridBridgeError):
    """The exchange answered with an error status; ``messages`` are its own words."""

    def __init__(self, status: int, messages: list[str], what: str) -> None:
        self.status = status
        self.messages = messages
        super().__init__(f"{what}: the exchange answered {status}: " + "; ".join(messages))


class ExchangeUnreachable(GridBridgeError):
    """No answer from the exchange (not running, wrong address, timed out)."""


def _messages(answer: httpx.Response) -> list[str]:
    try:
        detail = answer.json().get("detail")
    except ValueError:
        return [answer.text.strip() or answer.reason_phrase]
    if isinstance(detail, list):
        return field_messages(d for d in detail if isinstance(d, dict))
    return [str(detail)]


class ExchangeClient:
    """Calls to one exchange with one bearer token (seconds for ``timeout_s``)."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {token}"},
                                  transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def call(self, method: str, path: str, *, what: str, ok: tuple[int, ...] = (200, 201),
             **kwargs: Any) -> httpx.Response:
        """The answer to ``method path``; :class:`ExchangeRefused` unless its status is in
        ``ok``. ``what`` says what the call was for, in messages."""
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ExchangeUnreachable(
                f"{what}: cannot reach the exchange at {self.base_url} ({exc}) — fix: start it "
                "with gridbridge exchange serve, or pass its address with --exchange URL"
            ) from None
        if answer.status_code not in ok:
            messages = _messages(answer)
            if answer.status_code == 401:
                messages.append("fix: start the app with a valid token (gridbridge exchange "
                                "token create --role ...)")
            raise ExchangeRefused(answer.status_code, messages, what)
        return answer

    def get_json(self, path: str, *, what: str, **params: str) -> Any:
        """GET ``path`` as JSON."""
        return self.call("GET", path, what=what, params=params).json()

    def get_bytes(self, path: str, *, what: str, **params: str) -> bytes:
        """GET ``path``'s body as it is (files: CSV, Parquet, XLSX)."""
        return self.call("GET", path, what=what, params=params).content


def probe_viewer(client: ExchangeClient) -> Viewer:
    """The token's role and subject (site id or member code), as the exchange says."""
    found = client.get_json("/v1/whoami", what="checking the token")
    return Viewer(str(found["role"]), found.get("subject"))

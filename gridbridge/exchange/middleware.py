"""The exchange's ASGI middleware: request ids, answer counts, the audit log, the body limit.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``), so bodies stream through untouched.
Outermost first:

* :class:`RequestContext` — gives every request an id (the caller's ``X-Request-ID`` when it
  is 1-100 characters of ``[A-Za-z0-9._:-]``, else a fresh UUID) and returns it in the
  ``X-Request-ID`` answer header; counts answers by status; writes the audit row of every
  state-changing call (POST, PUT, PATCH, DELETE) once its status is known and before the
  answer leaves; turns an unexpected exception into a JSON 500 naming the request id.
* :class:`BodyLimit` — reads the whole body before the app sees it and answers 413 (JSON)
  when it is over the limit: at once when ``Content-Length`` says so, else as soon as the
  streamed bytes pass it. So no body over the limit is ever parsed or buffered whole.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridbridge.errors import GridBridgeError
from gridbridge.exchange.audit import AuditEntry, AuditWriter
from gridbridge.exchange.auth import PRINCIPAL_KEY
from gridbridge.exchange.clock import Clock, instant_text
from gridbridge.exchange.metrics import Metrics
from gridbridge.exchange.tokens import Principal

__all__ = ["REQUEST_ID_KEY", "STATE_CHANGING", "BodyLimit", "RequestContext"]

#: Where the request id is kept in the ASGI scope.
REQUEST_ID_KEY = "gridbridge.request_id"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_log = logging.getLogger("gridbridge.exchange")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# How much of an oversized streamed body is read and dropped before answering 413, so that
# the client (still sending) reads the answer instead of a reset connection.
_DRAIN_FACTOR = 8


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


class RequestContext:
    """Request id, answer counts and the audit log (see the module doc)."""

    def __init__(self, app: ASGIApp, *, audit: AuditWriter, metrics: Metrics,
                 clock: Clock) -> None:
        self.app = app
        self.audit = audit
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id
        started = False

        async def send_with_context(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
                await self._answered(scope, request_id, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        except Exception:
            _log.exception("request %s (%s %s) failed", request_id, scope["method"],
                           scope["path"])
            if started:
                raise
            await send_with_context({"type": "http.response.start", "status": 500,
                                     "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": orjson.dumps({
                "detail": f"internal error (request id {request_id}); nothing more is known "
                          "here — fix: report it with the request id"})})

    async def _answered(self, scope: Scope, request_id: str, status: int) -> None:
        self.metrics.http(status)
        if scope["method"] not in STATE_CHANGING:
            return
        who = scope.get(PRINCIPAL_KEY)
        principal = who if isinstance(who, Principal) else None
        entry = AuditEntry(
            at_utc=instant_text(self.clock()), request_id=request_id,
            token_id=principal.token_id if principal else None,
            role=principal.role if principal else None,
            subject=principal.subject if principal else None,
            method=scope["method"], path=scope["path"], status=status)
        try:
            await asyncio.wrap_future(self.audit.submit(entry))
        except GridBridgeError:
            # The call's own effect is done (or refused); hiding its answer would make the
            # client retry something that happened. The log keeps what the table lost.
            _log.exception("audit row not written: %s", entry)


class BodyLimit:
    """Answers 413 to bodies over ``max_bytes`` before the app reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> dict[str, str]:
        mib = self.max_bytes / 2**20
        return {"detail": f"request body too large: {size}, over the exchange's limit of "
                          f"{self.max_bytes} bytes ({mib:g} MiB) — fix: send it in smaller "
                          "parts (e.g. fewer hours per telemetry report)"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive, 0)
            await _send_json(send, 413, self._too_large(f"{int(declared)} bytes declared"))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                await _send_json(send, 413, self._too_large(f"at least {size} bytes"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: Message | None = {"type": "http.request", "body": b"".join(chunks),
                                  "more_body": False}

        async def receive_replayed() -> Message:
            nonlocal replay
            if replay is not None:
                message, replay = replay, None
                return message
            return await receive()

        await self.app(scope, receive_replayed, send)

    async def _drain(self, receive: Receive, size: int) -> None:
        """Read and drop the rest of the body, up to a bound."""
        while size <= self.max_bytes * _DRAIN_FACTOR:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

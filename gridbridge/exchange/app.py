"""The exchange's HTTP API: :func:`create_app` builds the FastAPI app on one database.

JSON in and out (answers rendered by orjson), OpenAPI at ``/openapi.json`` (docs at
``/docs``), versioned paths under ``/v1``. Who may call each ``/v1`` endpoint is declared
on it (:class:`~gridbridge.exchange.auth.Access`, listed in
:mod:`~gridbridge.exchange.api_sites` and :mod:`~gridbridge.exchange.api_rounds`, and in each
operation's OpenAPI description); the app refuses to start with an undeclared one.

Unauthenticated: ``GET /healthz`` (``{"status": "ok"}`` after a query on the database; 503
when it is unusable) and ``GET /metrics`` (Prometheus text; per-process counters, see
:mod:`~gridbridge.exchange.metrics`).

Answers to refusals: 401 (no, malformed, unknown or revoked token), 403 (a role or site not
allowed), 404 (no such site, round or bid of yours), 409 (conflicts with what is stored),
413 (body over :data:`MAX_BODY_BYTES`), 422 (``{"detail": [{"loc": [...], "msg": ...}]}``
naming the field, FastAPI's shape, also for the exchange's own field checks), 503 (the
database failed; nothing was written). Every answer carries ``X-Request-ID``; every POST,
PUT, PATCH and DELETE is in the audit log (:mod:`~gridbridge.exchange.audit`).
"""

from __future__ import annotations

import gc
import math
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridbridge import __version__
from gridbridge.errors import (
    ConflictError,
    ExchangeError,
    FieldError,
    InputError,
    NotFoundError,
)
from gridbridge.exchange import api_outlook, api_results, api_rounds, api_sites
from gridbridge.exchange.audit import AuditWriter
from gridbridge.exchange.auth import unguarded_paths
from gridbridge.exchange.clock import Clock, system_clock
from gridbridge.exchange.contract import ErrorOut, HealthOut
from gridbridge.exchange.deps import add_body_schemas
from gridbridge.exchange.lease import DEFAULT_LEASE_S
from gridbridge.exchange.metrics import CONTENT_TYPE, Metrics
from gridbridge.exchange.middleware import BodyLimit, RequestContext
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.worker import DEFAULT_TIME_LIMIT_S, ClearingWorker
from gridbridge.ledger.store import Ledger

__all__ = ["MAX_BODY_BYTES", "REQUEST_THREADS", "SERVE_ENV", "OrjsonResponse",
           "app_from_environment", "create_app"]

#: Largest request body accepted (2 MiB): a 31-day telemetry report with 16 GPU types is
#: about 0.3 MiB.
MAX_BODY_BYTES = 2 * 2**20
#: Threads that run requests' database work at once (anyio's default is 40); within the
#: pooled connections (gridbridge.db.POOL_SIZE), so none waits for a connection. Few: the
#: threads share one GIL, and each more one runnable slows the thread holding the database's
#: write turn (make bench: 4-8 threads carried about 1.4x the reports/s of 20).
REQUEST_THREADS = 6
#: How long a thread may hold the GIL while others wait (Python's default is 5 ms). The
#: thread holding the database's write turn gives the GIL up at every SQLite call and then
#: waits up to this long to get it back from a thread parsing a report: at 5 ms that made a
#: write transaction of well under 1 ms of work hold the turn about 9 ms (measured), and
#: writes are taken in turn. 0.5 ms: 1.3-1.7x the reports/s in make bench.
SWITCH_INTERVAL_S = 0.0005
#: Environment variable carrying create_app's options (JSON) to ``serve --workers N``'s
#: worker processes (:func:`app_from_environment`).
SERVE_ENV = "GRIDBRIDGE_EXCHANGE_SERVE"
# Characters of a refused text value repeated in a 422.
_ECHO_CHARS = 200
# The integers orjson writes.
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


class OrjsonResponse(JSONResponse):
    """JSON rendered by orjson (strict: NaN and infinity cannot be written)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _detail(status: int, exc: Exception) -> OrjsonResponse:
    return OrjsonResponse({"detail": str(exc)}, status_code=status)


def _echo(value: Any) -> Any:
    """What a 422 repeats of the refused input: scalars only (a refused object can be the
    whole body), long text cut, NaN, infinity and integers beyond 64 bits as text (JSON
    cannot hold the first two; orjson refuses the last)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not _INT64_MIN <= value <= _UINT64_MAX:
        return str(value)
    if isinstance(value, str) and len(value) > _ECHO_CHARS:
        return value[:_ECHO_CHARS] + "..."
    if isinstance(value, (dict, list, tuple, bytes)):
        return None
    return value


def _install_error_answers(app: FastAPI) -> None:
    async def validation_error(_request: Request, exc: Exception) -> OrjsonResponse:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for error in exc.errors():
            error = dict(error)
            if "input" in error:
                error["input"] = _echo(error["input"])
            errors.append(error)
        return OrjsonResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    async def field_error(_request: Request, exc: Exception) -> OrjsonResponse:
        assert isinstance(exc, FieldError)
        return OrjsonResponse({"detail": [{"type": "value_error", "loc": list(exc.loc),
                                           "msg": str(exc)}]}, status_code=422)

    async def not_found(_request: Request, exc: Exception) -> OrjsonResponse:
        return _detail(404, exc)

    async def conflict(_request: Request, exc: Exception) -> OrjsonResponse:
        return _detail(409, exc)

    async def invalid(_request: Request, exc: Exception) -> OrjsonResponse:
        return _detail(422, exc)

    async def unavailable(_request: Request, exc: Exception) -> OrjsonResponse:
        return _detail(503, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        # FastAPI answers an undocumented 400 "There was an error parsing the body" when the
        # JSON cannot even be decoded (bytes that are not UTF-8, nesting deeper than the
        # parser's recursion limit). That is malformed JSON like any other: answer its 422.
        assert isinstance(exc, StarletteHTTPException)
        cause = exc.__cause__
        if exc.status_code == 400 and cause is not None:
            why = {UnicodeDecodeError: "it is not UTF-8 text",
                   RecursionError: "it is nested too deeply"}.get(type(cause), type(cause).__name__)
            return OrjsonResponse({"detail": [{
                "type": "json_invalid", "loc": ["body"],
                "msg": f"the body cannot be read as JSON: {why} — fix: send UTF-8 JSON"}]},
                status_code=422)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Starlette picks the handler of the most specific class in the exception's MRO.
    app.add_exception_handler(FieldError, field_error)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(InputError, invalid)
    app.add_exception_handler(ExchangeError, unavailable)


def create_app(db_url: str, *, clock: Clock = system_clock,
               max_body_bytes: int = MAX_BODY_BYTES,
               solve_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
               clearing_worker: bool = True, lease_s: float = DEFAULT_LEASE_S) -> FastAPI:
    """The exchange on the database at ``db_url``, which ``gridbridge exchange init`` made.

    ``clock`` gives the time stamped on what is stored (received, created, amended, audited).
    ``solve_time_limit_s`` is the solver's time limit (seconds) written into the bundle of
    each round closed here whose planner gave none. With ``clearing_worker`` the app's
    lifespan runs a :class:`~gridbridge.exchange.worker.ClearingWorker` thread that clears
    closed rounds under a lease of ``lease_s`` seconds (:mod:`gridbridge.exchange.lease`).
    Opens the database at once: raises :class:`ExchangeError` when it cannot be opened or
    the exchange has not been initialised in it. The database is closed at shutdown.
    """
    store = ExchangeStore.open(db_url)
    # Creates the ledger's tables in a database initialised before they were added there.
    Ledger.open(db_url).close()
    metrics = Metrics()
    audit = AuditWriter(store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Request threads no more than the pooled connections they use (gridbridge.db).
        to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        # What is loaded by now (the solver's modules, the app) lives as long as the process:
        # out of the collector's sight, so its full collections, which a report's thousands
        # of short-lived objects set off, stop walking it every time.
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        worker = (ClearingWorker(store, clock, metrics, lease_s=lease_s) if clearing_worker
                  else None)
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            audit.close()
            store.close()

    app = FastAPI(
        title="GridBridge exchange",
        version=__version__,
        description=__doc__,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        responses={413: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    )
    app.state.store = store
    app.state.clock = clock
    app.state.metrics = metrics
    app.state.solve_time_limit_s = solve_time_limit_s
    _install_error_answers(app)
    app.include_router(api_sites.router)
    app.include_router(api_rounds.router)
    app.include_router(api_results.router)
    app.include_router(api_outlook.router)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches the document in app.openapi_schema; the bodies read by hand are
        # added to it once, before the first reader sees it.
        if app.openapi_schema is None:
            add_body_schemas(generate_openapi(), *api_sites.LEAN_BODIES)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    missing = unguarded_paths(app.routes, "/v1")
    if missing:
        raise AssertionError(f"/v1 routes without an Access rule: {', '.join(missing)}")

    @app.get("/healthz", tags=["service"], responses={503: {"model": ErrorOut}})
    async def healthz() -> HealthOut:
        """``ok`` once a query on the exchange's database succeeds; 503 when it fails."""
        await run_in_threadpool(store.ping)
        return HealthOut(status="ok")

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    async def get_metrics() -> PlainTextResponse:
        """Per-process counters in the Prometheus text format."""
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    # Added innermost first: BodyLimit runs inside RequestContext, so a 413 is audited and
    # carries its request id.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestContext, audit=audit, metrics=metrics, clock=clock)
    return app


def app_from_environment() -> FastAPI:
    """The app of one ``gridbridge exchange serve --workers N`` worker process: create_app
    with the options (JSON: ``db_url``, ``solve_time_limit_s``, ``lease_s``) in
    :data:`SERVE_ENV`, which ``serve`` set before starting the workers."""
    options = orjson.loads(os.environ[SERVE_ENV])
    return create_app(options["db_url"], solve_time_limit_s=options["solve_time_limit_s"],
                      lease_s=options["lease_s"])

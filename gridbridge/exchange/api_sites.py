"""``/v1`` endpoints about the registry and the sites: registry, asks, telemetry.

=======  ================================  ======================  =========================
method   path                              who may call            answers
=======  ================================  ======================  =========================
GET      /v1/whoami                        any valid token         200 WhoAmIOut
GET      /v1/registry                      any valid token         200 RegistryOut
PUT      /v1/sites/{site_id}/asks          site:{site_id}, admin   200 SiteOut; 404; 422
POST     /v1/sites/{site_id}/telemetry     site:{site_id}          201 Ack stored, 200 Ack
                                                                   duplicate; 404; 409; 422
POST     /v1/sites/{site_id}/metering      site:{site_id}          201 Ack stored, 200 Ack
                                                                   duplicate; 404; 409; 422
=======  ================================  ======================  =========================
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from starlette.concurrency import run_in_threadpool

from gridbridge.exchange.auth import Access, GuardedRoute
from gridbridge.exchange.contract import (
    Ack,
    AsksIn,
    ErrorOut,
    MeteringReport,
    RegistryOut,
    SiteOut,
    TelemetryReport,
    WhoAmIOut,
)
from gridbridge.exchange.deps import Store, json_body_openapi, parse_json_body
from gridbridge.exchange.metering import store_metering
from gridbridge.exchange.registry import read_registry, set_asks
from gridbridge.exchange.telemetry import store_telemetry
from gridbridge.exchange.tokens import Principal

__all__ = ["LEAN_BODIES", "router"]

#: Bodies read by hand (gridbridge.exchange.deps), whose schemas the app adds to OpenAPI.
LEAN_BODIES = (TelemetryReport,)

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["sites"])

_REFUSALS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


@router.get("/whoami", responses=_REFUSALS)
def get_whoami(who: Annotated[Principal, Depends(Access("any"))]) -> WhoAmIOut:
    """Whom the token speaks for: its id, role and subject (site id, member code, or none),
    so a client (the app) can show what this role may see without probing."""
    return WhoAmIOut(token_id=who.token_id, role=who.role, subject=who.subject)


@router.get("/registry", responses=_REFUSALS)
def get_registry(_who: Annotated[Principal, Depends(Access("any"))],
                 store: Store) -> RegistryOut:
    """The alliance's members, GPU types, and sites with their pools and asks."""
    return read_registry(store)


@router.put("/sites/{site_id}/asks", responses={**_REFUSALS, 404: {"model": ErrorOut}})
def put_asks(site_id: str, body: AsksIn, request: Request,
             _who: Annotated[Principal, Depends(Access("site:{site_id}", "admin"))],
             store: Store) -> SiteOut:
    """Set the site's ask (EUR per GPU-hour on top of energy, >= 0) for the GPU types named;
    every type must be one the site pools (else 422, nothing changes)."""
    return set_asks(store, site_id, body.asks, request.app.state.clock())


def _ack(request: Request, response: Response, kind: str, report_id: str,
         outcome: Literal["stored", "duplicate"]) -> Ack:
    """The answer to an idempotent site report: 201 stored, 200 duplicate; counted in
    ``gridbridge_<kind>_reports_total`` / ``gridbridge_<kind>_duplicates_total``."""
    metrics = request.app.state.metrics
    if outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
        metrics.add(f"gridbridge_{kind}_duplicates_total")
    else:
        metrics.add(f"gridbridge_{kind}_reports_total")
    return Ack(report_id=report_id, status=outcome)


@router.post("/sites/{site_id}/telemetry", status_code=status.HTTP_201_CREATED,
             responses={**_REFUSALS, 200: {"model": Ack, "description": "a duplicate, "
                                           "acknowledged and not stored again"},
                        404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
             openapi_extra=json_body_openapi(TelemetryReport))
async def post_telemetry(site_id: str, request: Request, response: Response,
                         _who: Annotated[Principal, Depends(Access("site:{site_id}"))],
                         store: Store) -> Ack:
    """Store an hourly forecast of the site's free GPUs and its zone's grid (body:
    ``TelemetryReport``).

    201 ``stored`` once committed to disk; 200 ``duplicate`` when this ``report_id`` was
    stored before with the same content (nothing stored again). Refused with nothing
    stored: a zone not the site's, a GPU type the site does not pool (422), a carbon
    signal other than the zone's series (409), the same report id with other content (409).
    """
    raw = await request.body()  # the access check ran first (GuardedRoute)

    def ingest() -> tuple[str, Literal["stored", "duplicate"]]:
        # Validation and storage in one worker thread: the body's parse stays off the loop.
        report = parse_json_body(TelemetryReport, raw, request.headers.get("content-type"))
        return report.report_id, store_telemetry(store, site_id, report,
                                                 request.app.state.clock())

    report_id, outcome = await run_in_threadpool(ingest)
    return _ack(request, response, "telemetry", report_id, outcome)


@router.post("/sites/{site_id}/metering", status_code=status.HTTP_201_CREATED,
             responses={**_REFUSALS, 200: {"model": Ack, "description": "a duplicate, "
                                           "acknowledged and not stored again"},
                        404: {"model": ErrorOut}, 409: {"model": ErrorOut}})
def post_metering(site_id: str, body: MeteringReport, request: Request,
                  response: Response,
                  _who: Annotated[Principal, Depends(Access("site:{site_id}"))],
                  store: Store) -> Ack:
    """Store metered energy (facility kWh per placement and hour) of the site's placements
    in a cleared round, and post its true-up to the ledger as one correction batch, in one
    transaction; the round becomes ``settled`` (metering has begun to true it up).

    201 ``stored`` once committed; 200 ``duplicate`` when this ``report_id`` was stored
    before with the same content. Refused with nothing stored: a round not cleared or
    settled (409), a row not of a placement of that round on this site or outside its hours
    (422 naming the row), an hour metered before or the same id with other content (409).
    """
    outcome = store_metering(store, site_id, body, request.app.state.clock())
    return _ack(request, response, "metering", body.report_id, outcome)

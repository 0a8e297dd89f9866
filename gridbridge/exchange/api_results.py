"""``/v1`` endpoints that close a round and read its results.

=======  ==================================  ==============================  ================
method   path                                who may call                    answers
=======  ==================================  ==============================  ================
POST     /v1/rounds/{round_id}/close         planner, admin                  200 RoundOut
                                                                             (gate_closed or
                                                                             failed); 404; 409
GET      /v1/rounds/{round_id}/placements    planner, treasurer, admin: all; 200
                                             member: its own bids; site:     [PlacementOut];
                                             those on its site               404; 409
GET      /v1/rounds/{round_id}/rejected      planner, treasurer, admin: all; 200
                                             member: its own bids            [RejectedOut];
                                                                             404; 409
GET      /v1/rounds/{round_id}/prices        any valid token                 200 [PriceOut];
                                                                             404; 409
GET      /v1/rounds/{round_id}/bundle/       planner, treasurer, admin: all; 200 file; 403;
         {name}                              member, site: all but bids.csv, 404; 409 (open)
                                             excluded.csv
GET      /v1/rounds/{round_id}/summary       planner, treasurer, admin       200 summary; 404;
                                                                             409
GET      /v1/rounds/{round_id}/ledger        treasurer, admin                200 [PostingOut];
                                                                             404; 409
GET      /v1/rounds/{round_id}/reports/      treasurer, planner, admin: all; 200 file; 403;
         {name}                              member: member_statements.csv,  404; 409
                                             member_totals.csv (its rows)
GET      /v1/sites/{site_id}/assignments     site:{site_id}                  200
                                                                             [AssignmentOut];
                                                                             404
=======  ==================================  ==============================  ================

Closing answers 200 with the round: ``gate_closed`` (the worker clears it next; poll
``GET /v1/rounds/{round_id}``, whose ``progress`` says what it is doing) or ``failed`` with
the reason when the market could not be snapshot (e.g. a zone without grid data for some
hours). The result readers answer 409 "round ... is <state>" until the round is cleared.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from gridbridge.exchange import results
from gridbridge.exchange.api_outlook import bundle_response
from gridbridge.exchange.auth import Access, GuardedRoute
from gridbridge.exchange.contract import (
    AssignmentOut,
    ErrorOut,
    PlacementOut,
    PostingOut,
    PriceOut,
    RejectedOut,
    RoundOut,
)
from gridbridge.exchange.deps import Store
from gridbridge.exchange.reports import MEMBER_TABLES, report_file
from gridbridge.exchange.tokens import Principal

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["results"])

_READ = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
         409: {"model": ErrorOut}}


@router.post("/rounds/{round_id}/close", responses=_READ)
def post_close(round_id: str, request: Request,
               _who: Annotated[Principal, Depends(Access("planner", "admin"))],
               store: Store) -> RoundOut:
    """Close an open round: freeze its bids and snapshot the market (one transaction).

    The round becomes ``gate_closed`` and a worker clears it, or ``failed`` with the reason
    when the snapshot cannot be taken; 409 unless the round is open.
    """
    state = request.app.state
    return results.close(store, round_id, state.clock(), state.solve_time_limit_s)


@router.get("/rounds/{round_id}/placements", responses=_READ)
def get_placements(round_id: str,
                   who: Annotated[Principal, Depends(Access("planner", "treasurer", "admin",
                                                            "member", "site"))],
                   store: Store) -> list[PlacementOut]:
    """The cleared round's placements with payments: all of them for planners, treasurers
    and admins; a member's own bids only; a site's only those on its site."""
    if who.role == "member":
        return results.placements(store, round_id, member=who.subject)
    if who.role == "site":
        return results.placements(store, round_id, site_id=who.subject)
    return results.placements(store, round_id)


@router.get("/rounds/{round_id}/rejected", responses=_READ)
def get_rejected(round_id: str,
                 who: Annotated[Principal, Depends(Access("planner", "treasurer", "admin",
                                                          "member"))],
                 store: Store) -> list[RejectedOut]:
    """The cleared round's rejected bids with the reason: all of them for planners,
    treasurers and admins; a member's own bids only."""
    member = who.subject if who.role == "member" else None
    return results.rejected(store, round_id, member=member)


@router.get("/rounds/{round_id}/bundle/{name}", response_class=Response,
            responses={**_READ, 200: {"description": "the bundle file",
                                      "content": {"text/csv": {}, "application/toml": {}}}})
def get_bundle_file(round_id: str, name: str,
                    who: Annotated[Principal, Depends(Access("any"))],
                    store: Store) -> Response:
    """A file of the market bundle the round was cleared on, stored at gate closure
    (``market.toml``, ``members.csv`` ... ``bids.csv``, ``excluded.csv``), so anyone may
    re-run or audit the round. The bids are sealed: members and sites get every file but
    ``bids.csv`` and ``excluded.csv`` (403). 409 while the round is open."""
    if who.role in ("member", "site") and name in results.BID_FILES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"{name} holds every member's bids, which are sealed — fix: "
                            f"read your own bids (GET /v1/rounds/{round_id}/bids) instead")
    return bundle_response(results.bundle_file(store, round_id, name), name)


@router.get("/rounds/{round_id}/prices", responses=_READ)
def get_prices(round_id: str, _who: Annotated[Principal, Depends(Access("any"))],
               store: Store) -> list[PriceOut]:
    """The cleared round's capacity prices (EUR per GPU-hour) per site, GPU type and hour."""
    return results.prices(store, round_id)


@router.get("/rounds/{round_id}/summary", responses=_READ)
def get_summary(round_id: str,
                _who: Annotated[Principal, Depends(Access("planner", "treasurer", "admin"))],
                store: Store) -> dict[str, Any]:
    """The cleared round's summary.json (DESIGN.md) plus ``solve_seconds``."""
    return results.summary(store, round_id)


@router.get("/rounds/{round_id}/ledger", responses=_READ)
def get_ledger(round_id: str,
               _who: Annotated[Principal, Depends(Access("treasurer", "admin"))],
               store: Store) -> list[PostingOut]:
    """The cleared round's ledger lines (integer cents, positive = received), by id."""
    return results.ledger_lines(store, round_id)


@router.get("/sites/{site_id}/assignments", responses=_READ)
def get_assignments(site_id: str,
                    _who: Annotated[Principal, Depends(Access("site:{site_id}"))],
                    store: Store) -> list[AssignmentOut]:
    """Every job placed on the site by a cleared round: round, bid, GPU type, GPUs and
    [start, end)."""
    return results.site_assignments(store, site_id)


#: What a member may download: its own statement and totals, as CSV.
_MEMBER_FILES = tuple(f"{table}.csv" for table in MEMBER_TABLES)


@router.get("/rounds/{round_id}/reports/{name}", response_class=Response,
            responses={**_READ, 200: {"description": "the report file", "content": {
                "text/csv": {}, "application/vnd.apache.parquet": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
def get_report(round_id: str, name: str,
               who: Annotated[Principal, Depends(Access("treasurer", "planner", "admin",
                                                        "member"))],
               store: Store) -> Response:
    """A settlement report file of the cleared (or settled) round: ``settlement.xlsx``
    (every table) or ``<table>.csv`` / ``<table>.parquet`` for a table of
    ``gridbridge.reports`` (metering corrections included). Treasurers, planners and admins
    get every file; a member only ``member_statements.csv`` and ``member_totals.csv``, with
    its own rows (else 403). 404 for an unknown name; 409 before the round is cleared.
    CSV and Parquet are byte-identical for the same stored state."""
    member = None
    if who.role == "member":
        if name not in _MEMBER_FILES:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"members may download only their own rows of "
                                f"{', '.join(_MEMBER_FILES)} — fix: ask for one of those, or "
                                "ask a treasurer for the other reports")
        member = who.subject
    content, media_type = report_file(store, round_id, name, member=member)
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{round_id}-{name}"'})

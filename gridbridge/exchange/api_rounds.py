"""``/v1`` endpoints about market rounds and their sealed bids.

=======  ==================================  ==============================  ================
method   path                                who may call                    answers
=======  ==================================  ==============================  ================
POST     /v1/rounds                          planner, admin                  201 RoundOut
GET      /v1/rounds                          any valid token                 200 [RoundOut]
GET      /v1/rounds/{round_id}               any valid token                 200 RoundOut; 404
POST     /v1/rounds/{round_id}/bids          member                          201 BidOut; 404;
                                                                             409; 422
GET      /v1/rounds/{round_id}/bids          member (its own), planner,      200 [BidOut]; 404
                                             admin; treasurer once cleared
PUT      /v1/rounds/{round_id}/bids/{bid}    member (owner)                  200 BidOut; 404;
                                                                             409; 422
DELETE   /v1/rounds/{round_id}/bids/{bid}    member (owner)                  200 BidOut; 404;
                                                                             409
=======  ==================================  ==============================  ================

Bids are sealed: a member sees, amends and withdraws only its own; another member's bid is
answered 404 exactly like a bid that does not exist. A treasurer sees a round's bids once the
round is ``cleared`` or ``settled`` (403 before).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status

from gridbridge.exchange.auth import Access, GuardedRoute
from gridbridge.exchange.contract import BidIn, BidOut, ErrorOut, RoundIn, RoundOut
from gridbridge.exchange.deps import Store
from gridbridge.exchange.rounds import (
    amend_bid,
    get_round,
    list_bids,
    list_rounds,
    open_round,
    submit_bid,
    withdraw_bid,
)
from gridbridge.exchange.tokens import Principal

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["rounds"])

#: Round states in which a treasurer may read the bids.
TREASURER_STATES = frozenset({"cleared", "settled"})

_REFUSALS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}
_MISSING = {**_REFUSALS, 404: {"model": ErrorOut}}
_CHANGING = {**_MISSING, 409: {"model": ErrorOut}}


Member = Annotated[Principal, Depends(Access("member"))]


def _member(who: Principal) -> str:
    assert who.subject is not None  # a member token always names its member
    return who.subject


@router.post("/rounds", status_code=status.HTTP_201_CREATED, responses=_REFUSALS)
def post_round(body: RoundIn, request: Request,
               who: Annotated[Principal, Depends(Access("planner", "admin"))],
               store: Store) -> RoundOut:
    """Open a market round (state ``open``) for a window of at most 31 days."""
    opened = open_round(store, body, who.label, request.app.state.clock())
    request.app.state.metrics.add("gridbridge_rounds_total")
    return opened


@router.get("/rounds", responses=_REFUSALS)
def get_rounds(_who: Annotated[Principal, Depends(Access("any"))],
               store: Store) -> list[RoundOut]:
    """Every round, newest window first."""
    return list_rounds(store)


@router.get("/rounds/{round_id}", responses=_MISSING)
def get_one_round(round_id: str, _who: Annotated[Principal, Depends(Access("any"))],
                  store: Store) -> RoundOut:
    """One round."""
    return get_round(store, round_id)


@router.post("/rounds/{round_id}/bids", status_code=status.HTTP_201_CREATED,
             responses=_CHANGING)
def post_bid(round_id: str, body: BidIn, request: Request, who: Member,
             store: Store) -> BidOut:
    """Submit a sealed bid for the token's member while the round is open.

    409 when the member already has a bid with this ``bid_id`` in the round or the round is
    not open; 422 naming the field for an unknown GPU type or jurisdiction, or a
    [release, deadline) that does not overlap the round's window.
    """
    return submit_bid(store, round_id, _member(who), body, request.app.state.clock())


@router.get("/rounds/{round_id}/bids", responses=_MISSING)
def get_bids(round_id: str,
             who: Annotated[Principal, Depends(Access("member", "planner", "admin",
                                                      "treasurer"))],
             store: Store) -> list[BidOut]:
    """The round's bids, withdrawn ones included: a member's own only; all for planners
    and admins; all for treasurers once the round is cleared or settled."""
    if who.role == "member":
        return list_bids(store, round_id, _member(who))
    if who.role == "treasurer":
        state = get_round(store, round_id).state
        if state not in TREASURER_STATES:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"round {round_id} is {state}; bids are sealed and a "
                                       "treasurer sees them once the round is cleared")
    return list_bids(store, round_id)


@router.put("/rounds/{round_id}/bids/{bid_id}", responses=_CHANGING)
def put_bid(round_id: str, bid_id: str, body: BidIn, request: Request, who: Member,
            store: Store) -> BidOut:
    """Amend the member's own bid (every field; same ``bid_id``) while the round is open."""
    return amend_bid(store, round_id, _member(who), bid_id, body, request.app.state.clock())


@router.delete("/rounds/{round_id}/bids/{bid_id}", responses=_CHANGING)
def delete_bid(round_id: str, bid_id: str, request: Request, who: Member,
               store: Store) -> BidOut:
    """Withdraw the member's own bid while the round is open (kept, state ``withdrawn``)."""
    return withdraw_bid(store, round_id, _member(who), bid_id, request.app.state.clock())

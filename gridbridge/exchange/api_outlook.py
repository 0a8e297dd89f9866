"""``GET /v1/outlook/{name}``: the market as a round over a window would see it now.

=======  ==================================  ==============================  ================
method   path                                who may call                    answers
=======  ==================================  ==============================  ================
GET      /v1/outlook/{name}?start_utc=...    any valid token                 200 file; 404;
         &end_utc=...&carbon_signal=...                                      422
         [&carbon_price_eur_per_t=...]
=======  ==================================  ==============================  ================

``name`` is a market bundle file (DESIGN.md) other than ``bids.csv``: ``market.toml``,
``members.csv``, ``gpus.csv``, ``sites.csv``, ``capacity.csv`` (free GPUs from the latest
telemetry, net of every cleared round's placements) or ``grid.csv`` (the latest report per
zone and hour in ``carbon_signal``; hours nobody reported are absent). The query
(:class:`~gridbridge.exchange.contract.OutlookQuery`) is checked like a round's window: hours
on the hour, end after start, at most 31 days; a bad one is a 422 naming the field.
Planners and the app use it to look at a window before opening a round.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from gridbridge.errors import NotFoundError
from gridbridge.exchange.auth import Access, GuardedRoute
from gridbridge.exchange.contract import ErrorOut, OutlookQuery
from gridbridge.exchange.snapshot import outlook_files
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import Principal

__all__ = ["bundle_response", "router"]

router = APIRouter(prefix="/v1", route_class=GuardedRoute, tags=["market"])

#: Content type of each kind of bundle file.
_MEDIA_TYPES = {".csv": "text/csv; charset=utf-8", ".toml": "application/toml; charset=utf-8"}


def bundle_response(text: str, name: str) -> Response:
    """A bundle file's text as the answer, typed by its extension."""
    media_type = next((m for ext, m in _MEDIA_TYPES.items() if name.endswith(ext)),
                      "text/plain; charset=utf-8")
    return Response(text.encode(), media_type=media_type,
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.get("/outlook/{name}", response_class=Response,
            responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                       200: {"description": "the bundle file",
                             "content": {"text/csv": {}, "application/toml": {}}}})
def get_outlook(name: str, query: Annotated[OutlookQuery, Query()], request: Request,
                _who: Annotated[Principal, Depends(Access("any"))]) -> Response:
    """The bundle file ``name`` for the window [``start_utc``, ``end_utc``) as the exchange
    sees it now (see the module doc)."""
    store: ExchangeStore = request.app.state.store
    with store.read() as conn:
        files = outlook_files(conn, query.start_utc, query.end_utc,
                              query.carbon_signal, query.carbon_price_eur_per_t)
    if name not in files:
        raise NotFoundError(f"the outlook has no file '{name}' — fix: ask for one of "
                            f"{', '.join(sorted(files))} (bids are sealed)")
    return bundle_response(files[name], name)

"""Market rounds and their sealed bids, as stored.

A round is opened ``open`` for a window [``window_start_utc``, ``window_end_utc``) and a
carbon price; later parts move it ``gate_closed`` -> ``clearing`` -> ``cleared`` ->
``settled`` (or ``failed`` with a reason). Round ids are ``R-<window start YYYYMMDD>-<8 hex>``.

Bids belong to a member and a round; a bid id is the member's own (unique per member within
the round: another member's choice of the same id neither fails nor tells anything). While
the round is ``open`` a member submits, amends (replaces every field; ``amended_at_utc``)
and withdraws (``state='withdrawn'``, kept for the record; withdrawing again changes
nothing) its own bids. A bid's GPU types and jurisdictions must be in the registry and
[``release_utc``, ``deadline_utc``) must overlap the round's window. Who may see which bids is
the API's rule (:mod:`gridbridge.exchange.api_rounds`); here a member's view is a filter.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from gridbridge.errors import ConflictError, FieldError, NotFoundError
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import instant_text
from gridbridge.exchange.contract import BidIn, BidOut, GpuOption, RoundIn, RoundOut
from gridbridge.exchange.registry import known_jurisdictions
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.hours import format_hour

__all__ = [
    "amend_bid",
    "find_round",
    "get_round",
    "list_bids",
    "list_rounds",
    "open_round",
    "submit_bid",
    "withdraw_bid",
]


def _round_out(row: Mapping[str, Any]) -> RoundOut:
    return RoundOut(**{name: row.get(name) for name in RoundOut.model_fields})


def _with_progress() -> sa.Select[Any]:
    """Rounds with their worker's progress (null before a worker took one)."""
    return (sa.select(t.rounds, t.round_runs.c.progress)
            .select_from(t.rounds.outerjoin(t.round_runs)))


def open_round(store: ExchangeStore, body: RoundIn, created_by: str, at: datetime) -> RoundOut:
    """Open a round (state ``open``) and return it; ``created_by`` is the caller's label."""
    now = instant_text(at)
    row = {
        "round_id": f"R-{body.window_start_utc:%Y%m%d}-{secrets.token_hex(4)}",
        "state": "open",
        "window_start_utc": format_hour(body.window_start_utc),
        "window_end_utc": format_hour(body.window_end_utc),
        "carbon_price_eur_per_t": body.carbon_price_eur_per_t,
        "carbon_signal": body.carbon_signal,
        "time_limit_s": body.time_limit_s,
        "created_at_utc": now,
        "created_by": created_by,
        "updated_at_utc": now,
        "reason": None,
    }
    with store.write() as conn:
        conn.execute(t.rounds.insert().values(**row))
    return _round_out(row)


def list_rounds(store: ExchangeStore) -> list[RoundOut]:
    """Every round, newest window first (then by id)."""
    with store.read() as conn:
        rows = conn.execute(_with_progress().order_by(t.rounds.c.window_start_utc.desc(),
                                                         t.rounds.c.round_id)).mappings()
        return [_round_out(r) for r in rows]


def find_round(conn: sa.Connection, round_id: str) -> sa.RowMapping:
    row = conn.execute(sa.select(t.rounds).where(t.rounds.c.round_id == round_id)
                       ).mappings().first()
    if row is None:
        raise NotFoundError(f"round {round_id} does not exist — fix: check the id (GET "
                            "/v1/rounds lists the rounds)")
    return row


def get_round(store: ExchangeStore, round_id: str) -> RoundOut:
    """One round; :class:`NotFoundError` when there is none."""
    with store.read() as conn:
        find_round(conn, round_id)
        row = conn.execute(_with_progress().where(t.rounds.c.round_id == round_id)
                           ).mappings().one()
        return _round_out(row)


def _require_open(row: sa.RowMapping) -> None:
    if row["state"] != "open":
        raise ConflictError(f"round {row['round_id']} is {row['state']}; bids are taken, "
                            "amended and withdrawn only while a round is open — fix: bid in an "
                            "open round (GET /v1/rounds)")


def _bid_out(row: sa.RowMapping) -> BidOut:
    values = dict(row)
    values["options"] = [GpuOption(**o) for o in orjson.loads(values.pop("options_json"))]
    values["allowed_jurisdictions"] = orjson.loads(values.pop("allowed_jurisdictions_json"))
    return BidOut(**values)


def _bid_values(conn: sa.Connection, round_row: sa.RowMapping, bid: BidIn) -> dict[str, object]:
    """The bid's columns, after checking it against the registry and the round's window."""
    known_types = set(conn.execute(sa.select(t.gpu_types.c.gpu_type)).scalars())
    for i, option in enumerate(bid.options):
        if option.gpu_type not in known_types:
            raise FieldError(f"GPU type '{option.gpu_type}' is not in the registry (known: "
                             f"{', '.join(sorted(known_types))}) — fix: bid for a known type",
                             ("body", "options", i, "gpu_type"))
    jurisdictions = known_jurisdictions(conn)
    for i, code in enumerate(bid.allowed_jurisdictions):
        if code != "*" and code not in jurisdictions:
            raise FieldError(f"jurisdiction '{code}' has no site in the registry (known: "
                             f"{', '.join(sorted(jurisdictions))}) — fix: list known "
                             "jurisdictions, or '*' for any", ("body", "allowed_jurisdictions", i))
    release, deadline = format_hour(bid.release_utc), format_hour(bid.deadline_utc)
    start, end = round_row["window_start_utc"], round_row["window_end_utc"]
    # Text order is time order for these stamps.
    if deadline <= start:
        raise FieldError(f"deadline_utc {deadline} is not after the round's window start "
                         f"{start}: the job could not run in round {round_row['round_id']} "
                         f"[{start}, {end}) — fix: bid in a round whose window it overlaps",
                         ("body", "deadline_utc"))
    if release >= end:
        raise FieldError(f"release_utc {release} is not before the round's window end {end} "
                         f"(exclusive): the job could not run in round {round_row['round_id']} "
                         f"[{start}, {end}) — fix: bid in a round whose window it overlaps",
                         ("body", "release_utc"))
    return {
        "gpus": bid.gpus,
        "options_json": orjson.dumps([o.model_dump() for o in bid.options]).decode(),
        "release_utc": release,
        "deadline_utc": deadline,
        "value_eur": bid.value_eur,
        "allowed_jurisdictions_json": orjson.dumps(list(bid.allowed_jurisdictions)).decode(),
    }


def _bid_where(round_id: str, member: str, bid_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(t.bids.c.round_id == round_id, t.bids.c.member == member,
                   t.bids.c.bid_id == bid_id)


def _own_bid(conn: sa.Connection, round_id: str, member: str, bid_id: str) -> sa.RowMapping:
    row = conn.execute(sa.select(t.bids).where(_bid_where(round_id, member, bid_id))
                       ).mappings().first()
    if row is None:
        # The same answer whether the id is free or another member's: bids are sealed.
        raise NotFoundError(f"you have no bid {bid_id} in round {round_id} — fix: check the id "
                            f"(GET /v1/rounds/{round_id}/bids lists yours)")
    return row


def submit_bid(store: ExchangeStore, round_id: str, member: str, bid: BidIn,
               at: datetime) -> BidOut:
    """Store ``member``'s new bid in an open round.

    Raises :class:`NotFoundError` (no such round), :class:`ConflictError` (round not open;
    the member already used ``bid_id`` in the round) or :class:`FieldError` (unknown GPU
    type or jurisdiction, no overlap with the window); nothing is stored then.
    """
    try:
        with store.write() as conn:
            round_row = find_round(conn, round_id)
            _require_open(round_row)
            values = _bid_values(conn, round_row, bid)
            conn.execute(t.bids.insert().values(
                round_id=round_id, member=member, bid_id=bid.bid_id, state="submitted",
                submitted_at_utc=instant_text(at), amended_at_utc=None, withdrawn_at_utc=None,
                **values))
            row = _own_bid(conn, round_id, member, bid.bid_id)
    except sa.exc.IntegrityError:
        raise ConflictError(f"you already have a bid {bid.bid_id} in round {round_id} — fix: "
                            f"amend it (PUT /v1/rounds/{round_id}/bids/{bid.bid_id}) or give "
                            "the new bid another bid_id") from None
    return _bid_out(row)


def amend_bid(store: ExchangeStore, round_id: str, member: str, bid_id: str, bid: BidIn,
              at: datetime) -> BidOut:
    """Replace ``member``'s bid ``bid_id`` with ``bid`` (same ``bid_id``) while the round is
    open; a withdrawn bid cannot be amended (:class:`ConflictError`)."""
    if bid.bid_id != bid_id:
        raise FieldError(f"bid_id '{bid.bid_id}' differs from the bid being amended "
                         f"('{bid_id}') — fix: send the same bid_id as in the path",
                         ("body", "bid_id"))
    with store.write() as conn:
        round_row = find_round(conn, round_id)
        current = _own_bid(conn, round_id, member, bid_id)
        _require_open(round_row)
        if current["state"] == "withdrawn":
            raise ConflictError(f"bid {bid_id} was withdrawn at {current['withdrawn_at_utc']} "
                                "and cannot be amended — fix: submit a new bid with another "
                                "bid_id")
        values = _bid_values(conn, round_row, bid)
        conn.execute(t.bids.update().where(_bid_where(round_id, member, bid_id))
                     .values(amended_at_utc=instant_text(at), **values))
        return _bid_out(_own_bid(conn, round_id, member, bid_id))


def withdraw_bid(store: ExchangeStore, round_id: str, member: str, bid_id: str,
                 at: datetime) -> BidOut:
    """Withdraw ``member``'s bid while the round is open (again: no change); return it."""
    with store.write() as conn:
        round_row = find_round(conn, round_id)
        current = _own_bid(conn, round_id, member, bid_id)
        _require_open(round_row)
        if current["state"] != "withdrawn":
            conn.execute(t.bids.update().where(_bid_where(round_id, member, bid_id))
                         .values(state="withdrawn", withdrawn_at_utc=instant_text(at)))
            current = _own_bid(conn, round_id, member, bid_id)
        return _bid_out(current)


def list_bids(store: ExchangeStore, round_id: str, member: str | None = None) -> list[BidOut]:
    """The round's bids (only ``member``'s when given), withdrawn ones included, by member
    then bid id; :class:`NotFoundError` when the round does not exist."""
    with store.read() as conn:
        find_round(conn, round_id)
        statement = sa.select(t.bids).where(t.bids.c.round_id == round_id)
        if member is not None:
            statement = statement.where(t.bids.c.member == member)
        rows = conn.execute(statement.order_by(t.bids.c.member, t.bids.c.bid_id)).mappings()
        return [_bid_out(r) for r in rows]

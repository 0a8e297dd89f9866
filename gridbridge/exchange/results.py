"""A round's gate closure and its stored results, as the API reads them.

Results (placements, rejected bids, prices, summary, ledger lines) exist once a round is
``cleared`` (or ``settled``); before that every reader raises :class:`ConflictError`
"round ... is <state>" (409). Who may read which rows is the API's rule
(:mod:`gridbridge.exchange.api_results`); here a member's or a site's view is a filter.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from gridbridge.errors import ConflictError, NotFoundError
from gridbridge.exchange import schema as t
from gridbridge.exchange.contract import (
    AssignmentOut,
    PlacementOut,
    PostingOut,
    PriceOut,
    RejectedOut,
    RoundOut,
)
from gridbridge.exchange.registry import site_or_404
from gridbridge.exchange.rounds import find_round, get_round
from gridbridge.exchange.snapshot import (
    COMMITTED_STATES,
    EXCLUDED_NAME,
    close_round,
    read_bundle_rows,
)
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.ledger.store import ledger_postings

__all__ = ["BID_FILES", "bundle_file", "close", "ledger_lines", "placements", "prices", "rejected",
           "site_assignments", "summary"]


def close(store: ExchangeStore, round_id: str, at: datetime, time_limit_s: float) -> RoundOut:
    """Close the open round ``round_id`` in one transaction (:func:`close_round`): bids
    frozen and its bundle stored (``gate_closed``), or ``failed`` with the reason when the
    snapshot cannot be taken. :class:`NotFoundError`, or :class:`ConflictError` unless open."""
    with store.write() as conn:
        find_round(conn, round_id)
        close_round(conn, round_id, at, time_limit_s)
    return get_round(store, round_id)


def _cleared(conn: sa.Connection, round_id: str) -> None:
    state = find_round(conn, round_id)["state"]
    if state not in COMMITTED_STATES:
        raise ConflictError(f"round {round_id} is {state}; its results exist once it is "
                            "cleared — fix: poll GET /v1/rounds/" + round_id + " until its "
                            "state is cleared")


def placements(store: ExchangeStore, round_id: str, *, member: str | None = None,
               site_id: str | None = None) -> list[PlacementOut]:
    """The cleared round's placements (only ``member``'s bids, or only those on
    ``site_id``, when given), by member and bid id."""
    with store.read() as conn:
        _cleared(conn, round_id)
        statement = sa.select(t.placements).where(t.placements.c.round_id == round_id)
        if member is not None:
            statement = statement.where(t.placements.c.member == member)
        if site_id is not None:
            statement = statement.where(t.placements.c.site_id == site_id)
        rows = conn.execute(statement).mappings()
        out = [PlacementOut(**r) for r in rows]
    return sorted(out, key=lambda p: (p.member, p.bid_id))


def prices(store: ExchangeStore, round_id: str) -> list[PriceOut]:
    """The cleared round's capacity prices, by site, GPU type and hour."""
    with store.read() as conn:
        _cleared(conn, round_id)
        rows = conn.execute(sa.select(t.prices).where(t.prices.c.round_id == round_id)
                            ).mappings()
        out = [PriceOut(**{k: r[k] for k in PriceOut.model_fields}) for r in rows]
    return sorted(out, key=lambda p: (p.site_id, p.gpu_type, p.hour_utc))


def summary(store: ExchangeStore, round_id: str) -> dict[str, Any]:
    """The cleared round's summary.json, plus ``solve_seconds`` (wall seconds)."""
    with store.read() as conn:
        _cleared(conn, round_id)
        run = conn.execute(sa.select(t.round_runs).where(t.round_runs.c.round_id == round_id)
                           ).mappings().one()
    found: dict[str, Any] = orjson.loads(run["summary_json"])
    return {**found, "solve_seconds": run["solve_seconds"]}


def ledger_lines(store: ExchangeStore, round_id: str) -> list[PostingOut]:
    """The cleared round's ledger lines (with any corrections), by posting id."""
    with store.read() as conn:
        _cleared(conn, round_id)
        rows = conn.execute(sa.select(ledger_postings)
                            .where(ledger_postings.c.round_id == round_id)).mappings()
        out = [PostingOut(**{k: r[k] for k in PostingOut.model_fields}) for r in rows]
    # Sorted here: PostgreSQL collates text by locale, and the order must not depend on it.
    return sorted(out, key=lambda p: p.posting_id)


def rejected(store: ExchangeStore, round_id: str, *,
             member: str | None = None) -> list[RejectedOut]:
    """The cleared round's rejected bids with the reason (only ``member``'s when given), by
    member and bid id."""
    with store.read() as conn:
        _cleared(conn, round_id)
        statement = sa.select(t.rejected).where(t.rejected.c.round_id == round_id)
        if member is not None:
            statement = statement.where(t.rejected.c.member == member)
        out = [RejectedOut(**r) for r in conn.execute(statement).mappings()]
    return sorted(out, key=lambda b: (b.member, b.bid_id))


#: Files of a stored bundle that hold the members' bids (sealed from members and sites).
BID_FILES = ("bids.csv", EXCLUDED_NAME)


def bundle_file(store: ExchangeStore, round_id: str, name: str) -> str:
    """The text of file ``name`` of the bundle stored at the round's gate closure;
    :class:`ConflictError` while the round is open (no snapshot yet), :class:`NotFoundError`
    for a name the bundle has not (or when the round failed before its snapshot)."""
    with store.read() as conn:
        state = find_round(conn, round_id)["state"]
        if state == "open":
            raise ConflictError(f"round {round_id} is open; its bundle is taken at gate closure "
                                f"— fix: close it first (POST /v1/rounds/{round_id}/close), or "
                                "read GET /v1/outlook/{name} for the market as it is now")
        files = read_bundle_rows(conn, round_id)
    if name not in files:
        raise NotFoundError(f"round {round_id} has no bundle file '{name}' — fix: ask for one of "
                            f"{', '.join(sorted(files)) or 'none (its snapshot failed)'}")
    return files[name]


def site_assignments(store: ExchangeStore, site_id: str) -> list[AssignmentOut]:
    """Every placement on ``site_id`` of every cleared (or settled) round, by start, round
    and bid, with the hours the exchange has metered of it; :class:`NotFoundError` for a
    site not in the registry."""
    p, r, m = t.placements, t.rounds, t.metering_rows
    with store.read() as conn:
        site_or_404(conn, site_id)
        rows = list(conn.execute(
            sa.select(p, r.c.state.label("round_state"))
            .select_from(p.join(r, r.c.round_id == p.c.round_id))
            .where(p.c.site_id == site_id, r.c.state.in_(COMMITTED_STATES))).mappings())
        metered: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for round_id, member, bid_id, hour in conn.execute(
                sa.select(m.c.round_id, m.c.member, m.c.bid_id, m.c.hour_utc)
                .select_from(m.join(p, sa.and_(p.c.round_id == m.c.round_id,
                                               p.c.member == m.c.member,
                                               p.c.bid_id == m.c.bid_id)))
                .where(p.c.site_id == site_id)):
            metered[(round_id, member, bid_id)].append(hour)
    out = [AssignmentOut(**{k: row[k] for k in AssignmentOut.model_fields
                            if k != "metered_hours_utc"},
                         metered_hours_utc=sorted(metered[(row["round_id"], row["member"],
                                                           row["bid_id"])]))
           for row in rows]
    return sorted(out, key=lambda a: (a.start_utc, a.round_id, a.member, a.bid_id))

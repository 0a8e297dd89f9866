"""Metering: a site's metered energy per placement and hour, trued up into the ledger at once.

A report names placements the way ``GET /v1/sites/{site_id}/assignments`` does: the
member's ``bid_id``, plus ``member`` where two members' bids of that id are on the site
(422 asks for it then); the bundle and the ledger call them ``<member>:<bid_id>``, which is
accepted as ``bid_id`` too.
Accepted only for a round that is ``cleared`` or ``settled`` (409 otherwise), and only rows
of placements of that round on the reporting site (422 naming the row otherwise), inside the
placement's hours [start, end) (422 naming the row), each placement-hour once in the report
(422) and once ever (409: the true-up corrects against the forecast, so metering an hour a
second time would correct it twice).

Storing one report is ONE transaction: the ``exchange_metering_reports`` row, its
``exchange_metering_rows``, the per-placement true-up records (``exchange_trueup_records``)
and the correction batch posted to the ledger
(:func:`gridbridge.ledger.store.post_corrections_on`), computed by
:func:`gridbridge.settlement.trueup.true_up` from the round's stored bundle and placements,
stamped with the hour the report was received. The first metering of a round moves it from
``cleared`` to ``settled``: **settled means metering has begun to true the round up** (later
reports still add batches). Any refusal or failure stores nothing.

Idempotent by ``(site_id, report_id)`` like telemetry: the same report again is acknowledged
as a duplicate (nothing written); the same id with other content is refused (409). The batch
id is ``meter:<site_id>:<report_id>``, its posting ids ``<round_id>:<batch_id>:NNNNNN``,
unique across the ledger because the report key is.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import polars as pl
import sqlalchemy as sa

from gridbridge.errors import ConflictError, FieldError
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import instant_text
from gridbridge.exchange.contract import MeteringReport
from gridbridge.exchange.registry import site_or_404
from gridbridge.exchange.rounds import find_round
from gridbridge.exchange.snapshot import COMMITTED_STATES, read_bundle_rows
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.worker import _market
from gridbridge.hours import format_hour, parse_hour
from gridbridge.ledger.store import post_corrections_on
from gridbridge.settlement.trueup import RECORD_COLUMNS, true_up
from optim.clearing import PLACEMENT_SCHEMA

__all__ = ["batch_id_of", "placements_frame", "store_metering"]

_UTC = pl.Datetime("us", "UTC")


def batch_id_of(site_id: str, report_id: str) -> str:
    """The ledger batch id of a site's metering report."""
    return f"meter:{site_id}:{report_id}"


def _sha256(report: MeteringReport) -> str:
    return hashlib.sha256(report.model_dump_json().encode("utf-8")).hexdigest()


def placements_frame(rows: list[sa.RowMapping]) -> pl.DataFrame:
    """Stored placements as placements.csv has them: ``bid_id`` as ``<member>:<bid_id>``,
    times ``Datetime("us", "UTC")``, EUR for the whole job; sorted by bid_id."""
    data = [{**{c: r[c] for c in PLACEMENT_SCHEMA if c in r},
             "bid_id": f"{r['member']}:{r['bid_id']}",
             "start_utc": parse_hour(r["start_utc"]), "end_utc": parse_hour(r["end_utc"])}
            for r in rows]
    return pl.DataFrame(data, schema=dict(PLACEMENT_SCHEMA), orient="row").sort("bid_id")


def store_metering(store: ExchangeStore, site_id: str, report: MeteringReport,
                   received_at: datetime) -> Literal["stored", "duplicate"]:
    """Store ``report`` of ``site_id`` and post its corrections (module doc): ``stored`` when
    committed, ``duplicate`` when the same report was stored before (nothing written now).

    Raises :class:`~gridbridge.errors.NotFoundError` (site, round), :class:`FieldError`
    (a row not of this site's placements or outside its hours) or :class:`ConflictError`
    (round not cleared, hour already metered, report id reused); nothing is stored then.
    """
    digest = _sha256(report)
    try:
        with store.write() as conn:
            site_or_404(conn, site_id)
            found = _stored(conn, site_id, report.report_id)
            if found is not None:
                return _duplicate(site_id, report, digest, found)
            _store(conn, site_id, report, digest, received_at)
    except sa.exc.IntegrityError:
        with store.read() as conn:
            found = _stored(conn, site_id, report.report_id)
        if found is None:
            raise ConflictError(
                f"metering report {report.report_id} of site {site_id} conflicted with a "
                "concurrent report of the same hours; nothing was stored — fix: send it "
                "again (hours metered meanwhile are then named)") from None
        return _duplicate(site_id, report, digest, found)
    return "stored"


def _stored(conn: sa.Connection, site_id: str, report_id: str) -> sa.Row[Any] | None:
    m = t.metering_reports
    return conn.execute(sa.select(m.c.body_sha256, m.c.received_at_utc)
                        .where(m.c.site_id == site_id, m.c.report_id == report_id)).first()


def _duplicate(site_id: str, report: MeteringReport, digest: str,
               found: sa.Row[Any]) -> Literal["duplicate"]:
    if found.body_sha256 != digest:
        raise ConflictError(
            f"report_id '{report.report_id}' of site {site_id} was stored at "
            f"{found.received_at_utc} with other content; a report id names one report — "
            "fix: give a new report a new report_id")
    return "duplicate"


def _check_rows(conn: sa.Connection, site_id: str, report: MeteringReport
                ) -> tuple[list[sa.RowMapping], list[tuple[str, str]]]:
    """The placements the rows meter and each row's ``(member, bid_id)``, after checking
    every row (module doc)."""
    p = t.placements
    placed = {(r["member"], r["bid_id"]): r for r in conn.execute(
        sa.select(p).where(p.c.round_id == report.round_id, p.c.site_id == site_id)).mappings()}
    m = t.metering_rows
    metered = {tuple(r) for r in conn.execute(
        sa.select(m.c.member, m.c.bid_id, m.c.hour_utc).where(m.c.round_id == report.round_id))}
    seen: set[tuple[str, str, str]] = set()
    used: dict[tuple[str, str], sa.RowMapping] = {}
    keys: list[tuple[str, str]] = []
    for i, row in enumerate(report.rows):
        key = _resolve(placed, row.member, row.bid_id, report.round_id, site_id, i)
        keys.append(key)
        name = f"rows[{i}]: bid {key[0]}:{key[1]}"
        placement = placed[key]
        hour = format_hour(row.hour_utc)
        if not placement["start_utc"] <= hour < placement["end_utc"]:
            raise FieldError(
                f"{name}: hour {hour} is outside its placement [{placement['start_utc']}, "
                f"{placement['end_utc']}) — fix: meter only the hours it ran (UTC)",
                ("body", "rows", i, "hour_utc"))
        if (*key, hour) in seen:
            raise FieldError(f"{name}: hour {hour} is metered twice in this report — fix: "
                             "keep one row per placement and hour", ("body", "rows", i,
                                                                     "hour_utc"))
        if (*key, hour) in metered:
            raise ConflictError(
                f"{name}: hour {hour} was metered by an earlier report; a placement-hour is "
                "metered once (a second time would correct it twice) — fix: leave it out")
        seen.add((*key, hour))
        used[key] = placement
    return list(used.values()), keys


def _resolve(placed: dict[tuple[str, str], sa.RowMapping], member: str | None, bid_id: str,
             round_id: str, site_id: str, i: int) -> tuple[str, str]:
    """The ``(member, bid_id)`` of placement row ``i`` names (see :class:`MeteringRow`)."""
    if member is not None:
        candidates = [(member, bid_id)]
    else:
        candidates = [k for k in placed if k[1] == bid_id]
        whole = tuple(bid_id.split(":", 1))
        if not candidates and len(whole) == 2:
            candidates = [(whole[0], whole[1])]
    if len(candidates) > 1:
        raise FieldError(
            f"rows[{i}]: bid {bid_id} is placed on site {site_id} in round {round_id} for "
            f"members {', '.join(sorted(m for m, _ in candidates))} — fix: name the member "
            "(field member)", ("body", "rows", i, "member"))
    if not candidates or candidates[0] not in placed:
        shown = bid_id if member is None else f"{member}:{bid_id}"
        raise FieldError(
            f"rows[{i}]: bid {shown} is not a placement of round {round_id} on site "
            f"{site_id} — fix: meter only the site's assignments "
            f"(GET /v1/sites/{site_id}/assignments)", ("body", "rows", i, "bid_id"))
    return candidates[0]


def _store(conn: sa.Connection, site_id: str, report: MeteringReport, digest: str,
           received_at: datetime) -> None:
    round_row = find_round(conn, report.round_id)
    if round_row["state"] not in COMMITTED_STATES:
        raise ConflictError(
            f"round {report.round_id} is {round_row['state']}; metering is accepted once it "
            f"is cleared — fix: poll GET /v1/rounds/{report.round_id} until it is cleared")
    placements, keys = _check_rows(conn, site_id, report)
    round_id, batch_id = report.round_id, batch_id_of(site_id, report.report_id)
    market = _market(read_bundle_rows(conn, round_id), round_id)
    metering = pl.DataFrame(
        [{"bid_id": f"{m}:{b}", "hour_utc": r.hour_utc,
          "energy_kwh": r.energy_kwh, "carbon_g_per_kwh": r.carbon_g_per_kwh}
         for (m, b), r in zip(keys, report.rows, strict=True)],
        schema={"bid_id": pl.String, "hour_utc": _UTC, "energy_kwh": pl.Float64,
                "carbon_g_per_kwh": pl.Float64}, orient="row")
    trued = true_up(market, placements_frame(placements), metering, round_id=round_id,
                    batch_id=batch_id, posted_at_utc=received_at,
                    carbon_price_eur_per_t=float(round_row["carbon_price_eur_per_t"]),
                    source=f"metering report {report.report_id}")
    inserted = conn.execute(t.metering_reports.insert().values(
        site_id=site_id, report_id=report.report_id, round_id=round_id, body_sha256=digest,
        received_at_utc=instant_text(received_at), batch_id=batch_id, rows=len(report.rows),
        postings=trued.postings.height))
    report_pk = inserted.inserted_primary_key[0]
    rows = [{"round_id": round_id, "member": m, "bid_id": b,
             "hour_utc": format_hour(r.hour_utc), "report_pk": report_pk,
             "energy_kwh": r.energy_kwh, "carbon_g_per_kwh": r.carbon_g_per_kwh}
            for (m, b), r in zip(keys, report.rows, strict=True)]
    for start in range(0, len(rows), 1000):  # bounded statements
        conn.execute(t.metering_rows.insert(), rows[start:start + 1000])
    records = [{**{c: rec[c] for c in RECORD_COLUMNS}, "report_pk": report_pk,
                "round_id": round_id, "batch_id": batch_id}
               for rec in trued.records.iter_rows(named=True)]
    if records:
        conn.execute(t.trueup_records.insert(), records)
    if trued.postings.height:
        post_corrections_on(conn, round_id, batch_id, trued.postings)
    conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                         t.rounds.c.state == "cleared")
                 .values(state="settled", updated_at_utc=instant_text(received_at)))

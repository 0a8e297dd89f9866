"""Telemetry: a site's hourly forecast of free GPUs and of its zone's grid, stored once.

One report is one transaction that inserts its ``exchange_telemetry_reports`` row, its hours
packed into it (:mod:`gridbridge.exchange.forecast`), or nothing. The row's unique key
``(site_id, report_id)`` is what makes a re-delivery a duplicate, inside that transaction,
so two deliveries racing cannot both store. A duplicate must carry the same content (the
SHA-256 of the validated report): the same id with other content is refused.

Refused, with nothing stored: a ``measured_at_utc`` more than :data:`CLOCK_TOLERANCE` ahead
of the exchange's clock (422: the site's clock is wrong), a site not in the registry (404), a
zone other than the site's,
a GPU type the site has no pool of (422 naming the field), and a carbon signal other than
the one the zone's series already has (409: a zone's series never mixes direct and
lifecycle intensities; the first report of a zone fixes it).
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from gridbridge.errors import ConflictError, FieldError
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import instant_text
from gridbridge.exchange.contract import TelemetryReport
from gridbridge.exchange.forecast import PackedForecast, pack_columns
from gridbridge.exchange.registry import no_such_site
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.hours import format_hour

__all__ = ["CLOCK_TOLERANCE", "report_sha256", "store_telemetry"]

#: How far a site's clock may run ahead of the exchange's. A report's hours are labelled in
#: UTC by the site, so a clock a few minutes off still places them in the right hours; one
#: further ahead is refused, since its forecast may be built on hours it thinks have passed.
#: (Behind is always accepted: replays and backlogs after an outage are measured earlier.)
CLOCK_TOLERANCE = timedelta(minutes=15)


def report_sha256(report: TelemetryReport) -> str:
    """SHA-256 (hex) of the validated report in its canonical JSON form."""
    return hashlib.sha256(report.model_dump_json().encode("utf-8")).hexdigest()


# The statements of ingest, built once: a statement built per call is compiled from the
# cache, but its cache key is worked out again every time (for the insert, every column).
_SITE_POOLS = (
    sa.select(t.sites.c.zone, t.pools.c.gpu_type)
    .select_from(t.sites.outerjoin(t.pools, t.pools.c.site_id == t.sites.c.site_id))
    .where(t.sites.c.site_id == sa.bindparam("site_id")))
_INSERT_REPORT = t.telemetry_reports.insert()
_ZONE_SIGNAL = sa.select(t.zone_signals.c.signal).where(
    t.zone_signals.c.zone == sa.bindparam("zone"))
_INSERT_ZONE_SIGNAL = t.zone_signals.insert()
_STORED_REPORT = sa.select(t.telemetry_reports.c.body_sha256,
                           t.telemetry_reports.c.received_at_utc).where(
    t.telemetry_reports.c.site_id == sa.bindparam("site_id"),
    t.telemetry_reports.c.report_id == sa.bindparam("report_id"))
#: Hour stamps as text, remembered: consecutive reports forecast mostly the same hours (every
#: site the coming week), so most of a report's 168 stamps are looked up, not formatted.
_hour_text = functools.lru_cache(maxsize=4096)(format_hour)


def store_telemetry(store: ExchangeStore, site_id: str, report: TelemetryReport,
                    received_at: datetime) -> Literal["stored", "duplicate"]:
    """Store ``report`` of ``site_id``: ``stored`` when committed (on disk), ``duplicate``
    when the same report was stored before (nothing written now).

    Raises :class:`~gridbridge.errors.NotFoundError`, :class:`FieldError` or
    :class:`ConflictError` (see the module doc); nothing is stored then.
    """
    ahead = report.measured_at_utc - received_at
    if ahead > CLOCK_TOLERANCE:
        raise FieldError(
            f"measured_at_utc {instant_text(report.measured_at_utc)} is "
            f"{ahead.total_seconds() / 60:.0f} min ahead of the exchange's clock "
            f"({instant_text(received_at)}); at most {CLOCK_TOLERANCE.total_seconds() / 60:.0f} "
            "min is tolerated — fix: synchronise the site's clock (NTP)",
            ("body", "measured_at_utc"))
    digest = report_sha256(report)
    packed = _pack(report)
    try:
        with store.write() as conn:
            zone, pools = _site_zone_and_pools(conn, site_id)
            inserted = conn.execute(_INSERT_REPORT, {
                "site_id": site_id, "report_id": report.report_id, "body_sha256": digest,
                "received_at_utc": instant_text(received_at), "zone": report.zone,
                "signal": report.signal, "provider": report.provider,
                "measured_at_utc": instant_text(report.measured_at_utc),
                "hours": len(report.hours), "first_hour_utc": packed.first_hour_utc,
                "end_hour_utc": packed.end_hour_utc, "forecast_json": packed.forecast_json})
            # After the insert, so a re-delivery is a duplicate whatever changed since.
            _check(site_id, zone, pools, report)
            _fix_signal(conn, report, inserted.inserted_primary_key[0])
    except sa.exc.IntegrityError:
        return _explain_refusal(store, site_id, report, digest)
    return "stored"


def _pack(report: TelemetryReport) -> PackedForecast:
    """The report's hours in their stored form (:mod:`gridbridge.exchange.forecast`), in
    time order whatever order they came in."""
    hours = report.hours
    texts = [_hour_text(hour.hour_utc) for hour in hours]
    order = sorted(range(len(texts)), key=texts.__getitem__)  # text order is time order
    return pack_columns([texts[i] for i in order], [hours[i].gpus_free for i in order],
                        [hours[i].carbon_g_per_kwh for i in order],
                        [hours[i].price_eur_per_mwh for i in order])


def _site_zone_and_pools(conn: sa.Connection, site_id: str) -> tuple[str, set[str]]:
    """The site's zone and the GPU types it pools, in one query;
    :class:`~gridbridge.errors.NotFoundError` when the registry has no such site."""
    rows = conn.execute(_SITE_POOLS, {"site_id": site_id}).all()
    if not rows:
        raise no_such_site(site_id)
    return rows[0].zone, {row.gpu_type for row in rows if row.gpu_type is not None}


def _check(site_id: str, zone: str, pools: set[str], report: TelemetryReport) -> None:
    if report.zone != zone:
        raise FieldError(
            f"zone '{report.zone}' is not the zone of site {site_id} "
            f"('{zone}') — fix: report the grid of the site's own zone",
            ("body", "zone"))
    # Every type reported, gathered in one pass; the hours are walked only to name the first
    # one refused.
    if pools.issuperset(set().union(*(hour.gpus_free for hour in report.hours))):
        return
    for i, hour in enumerate(report.hours):
        for gpu_type in hour.gpus_free:
            if gpu_type not in pools:
                raise FieldError(
                    f"site {site_id} has no pool of GPU type '{gpu_type}' (it pools "
                    f"{', '.join(sorted(pools)) or 'none'}) — fix: report only its pools",
                    ("body", "hours", i, "gpus_free", gpu_type))


def _zone_signal(conn: sa.Connection, zone: str) -> str | None:
    return conn.execute(_ZONE_SIGNAL, {"zone": zone}).scalar_one_or_none()


def _fix_signal(conn: sa.Connection, report: TelemetryReport, report_pk: int) -> None:
    stored = _zone_signal(conn, report.zone)
    if stored is None:
        # Two first reports of a zone can race here on PostgreSQL (SQLite serialises
        # writers): the loser's insert fails on the zone's key once the winner commits, and
        # the zone's signal is then the winner's, read again after the savepoint's rollback.
        try:
            with conn.begin_nested():
                conn.execute(_INSERT_ZONE_SIGNAL, {"zone": report.zone, "signal": report.signal,
                                                   "set_by_report_pk": report_pk})
            return
        except sa.exc.IntegrityError:
            stored = _zone_signal(conn, report.zone)
    if stored is not None and stored != report.signal:
        raise ConflictError(
            f"signal '{report.signal}' differs from zone {report.zone}'s series, which is "
            f"'{stored}'; a zone's series never mixes signals — fix: report '{stored}' "
            "intensities (use a provider of that signal)")


def _explain_refusal(store: ExchangeStore, site_id: str, report: TelemetryReport,
                     digest: str) -> Literal["duplicate"]:
    """After a rolled-back IntegrityError: a duplicate, or why not."""
    with store.read() as conn:
        stored = conn.execute(_STORED_REPORT, {"site_id": site_id,
                                               "report_id": report.report_id}).first()
    if stored is None:
        # Another constraint: a zone's first signal or a pool changed by a concurrent call.
        raise ConflictError(
            f"report {report.report_id} of site {site_id} conflicted with a concurrent change "
            "(the zone's signal or the site's pools); nothing was stored — fix: send it again")
    if stored.body_sha256 != digest:
        raise ConflictError(
            f"report_id '{report.report_id}' of site {site_id} was stored at "
            f"{stored.received_at_utc} with other content; a report id names one report — "
            "fix: give a new report a new report_id")
    return "duplicate"

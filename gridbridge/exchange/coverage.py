"""Which telemetry report speaks for each hour: the latest one that covers it.

Gate closure and the outlook need, per site (capacity) or per zone (grid) and per hour of a
window, the values of the last-received report (largest id) whose hours include that hour.
Reports are stored one row each (:mod:`gridbridge.exchange.forecast`), with the span of their
hours beside the packed document, so this reads the spans of the reports reaching into the
window (an index on ``end_hour_utc``) and then only the documents that can still decide an
hour, newest first: for a window in the future that is one report per site; for a window
reported hour by hour it is about one per hour.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.forecast import HourForecast, unpack
from gridbridge.hours import format_hour

__all__ = ["latest_hours", "window_hours"]

#: Documents fetched per query (bounded IN lists: PostgreSQL's parameter limit).
_CHUNK = 500


def window_hours(start: datetime, end: datetime) -> list[str]:
    """The hours of [``start``, ``end``) as hour text, in order."""
    n = int((end - start) / timedelta(hours=1))
    return [format_hour(start + timedelta(hours=h)) for h in range(n)]


def latest_hours(conn: sa.Connection, key: sa.ColumnElement[Any], keys: list[str],
                 start: datetime, end: datetime,
                 *extra: sa.ColumnElement[bool]) -> dict[tuple[str, str], HourForecast]:
    """(key value, hour) -> the values of the last-received report covering that hour, among
    the reports whose ``key`` column (site_id or zone) is one of ``keys`` and that match
    ``extra``; an hour no such report covers is absent."""
    tr = t.telemetry_reports
    hours = window_hours(start, end)
    if not hours or not keys:
        return {}
    spans: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for pk, value, first, stop in conn.execute(
            sa.select(tr.c.id, key, tr.c.first_hour_utc, tr.c.end_hour_utc)
            .where(key.in_(keys), tr.c.end_hour_utc > hours[0],
                   tr.c.first_hour_utc <= hours[-1], *extra)
            .order_by(tr.c.id.desc())):
        spans[value].append((pk, first, stop))
    found: dict[tuple[str, str], HourForecast] = {}
    for value, reports in spans.items():
        for hour, values in _decide(conn, reports, set(hours)).items():
            found[(value, hour)] = values
    return found


def _decide(conn: sa.Connection, reports: list[tuple[int, str, str]],
            uncovered: set[str]) -> dict[str, HourForecast]:
    """hour -> values for the hours of ``uncovered`` that ``reports`` (newest first) cover.

    A pass picks, newest first, each report whose span reaches an hour no newer pick claims,
    and reads those documents. A report's hours may have gaps inside its span: the hours a
    pick claimed but lacks stay uncovered, and the next pass starts again just after that
    pick, so an older report passed over for them is considered again.
    """
    decided: dict[str, HourForecast] = {}
    documents: dict[int, dict[str, HourForecast]] = {}  # read once, kept for later passes
    position = 0
    while uncovered and position < len(reports):
        picks: list[tuple[int, set[str]]] = []
        claimed: set[str] = set()
        index = position
        while index < len(reports) and len(claimed) < len(uncovered):
            _, first, stop = reports[index]
            reach = {h for h in uncovered if first <= h < stop} - claimed
            if reach:
                picks.append((index, reach))
                claimed |= reach
            index += 1
        documents.update(_documents(conn, [reports[i][0] for i, _ in picks
                                           if reports[i][0] not in documents]))
        position = index
        for i, reach in picks:
            forecast = documents[reports[i][0]]
            for hour in reach & forecast.keys():
                decided[hour] = forecast[hour]
            uncovered -= reach & forecast.keys()
            if not reach <= forecast.keys():  # a gap: look again at what this pick passed
                position = min(position, i + 1)
    return decided


def _documents(conn: sa.Connection, pks: list[int]) -> dict[int, dict[str, HourForecast]]:
    tr = t.telemetry_reports
    out: dict[int, dict[str, HourForecast]] = {}
    for begin in range(0, len(pks), _CHUNK):
        rows = conn.execute(sa.select(tr.c.id, tr.c.forecast_json)
                            .where(tr.c.id.in_(pks[begin:begin + _CHUNK])))
        out.update({pk: unpack(text) for pk, text in rows})
    return out

"""``latest_hours`` against a plain reference: for every hour, the values of the newest
report (largest id) that has that hour, whatever gaps and overlaps the reports have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbridge.exchange import schema as t
from gridbridge.exchange.coverage import latest_hours
from gridbridge.exchange.forecast import HourForecast, pack
from gridbridge.hours import format_hour

START = datetime(2023, 7, 3, tzinfo=UTC)
SITES = ("S1", "S2")

# A report: its site and the hours (offsets from START, may have gaps) it has.
reports_strategy = st.lists(
    st.tuples(st.sampled_from(SITES), st.sets(st.integers(0, 30), min_size=1, max_size=12)),
    max_size=25)


def _store(conn: sa.Connection, reports: list[tuple[str, set[int]]]) -> None:
    for number, (site, hours) in enumerate(reports):
        packed = pack((format_hour(START + timedelta(hours=h)),
                       HourForecast({"A100": number}, float(number), 0.0)) for h in hours)
        conn.execute(t.telemetry_reports.insert().values(
            site_id=site, report_id=f"r{number}", body_sha256="x", received_at_utc="x",
            zone="DE", signal="direct", provider="p", measured_at_utc="x", hours=len(hours),
            first_hour_utc=packed.first_hour_utc, end_hour_utc=packed.end_hour_utc,
            forecast_json=packed.forecast_json))


@settings(max_examples=150, deadline=None)
@given(reports=reports_strategy, first=st.integers(0, 30), length=st.integers(1, 30))
def test_the_newest_report_with_the_hour_speaks_for_it(
        reports: list[tuple[str, set[int]]], first: int, length: int) -> None:
    engine = sa.create_engine("sqlite://")  # foreign keys off: no registry needed here
    t.metadata.create_all(engine)
    with engine.begin() as conn:
        _store(conn, reports)
        found = latest_hours(conn, t.telemetry_reports.c.site_id, list(SITES),
                             START + timedelta(hours=first),
                             START + timedelta(hours=first + length))
    expected = {}
    for number, (site, hours) in enumerate(reports):  # oldest first: newer ones overwrite
        for h in hours:
            if first <= h < first + length:
                expected[(site, format_hour(START + timedelta(hours=h)))] = number
    assert {key: int(values.carbon_g_per_kwh) for key, values in found.items()} == expected
    engine.dispose()

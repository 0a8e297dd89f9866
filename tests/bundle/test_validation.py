"""Validation rules: each test corrupts one thing in a valid bundle and checks the message.

Every rejection must name the file, the 1-based data row (header not counted) where there is
one, the field, and carry a fix; see ``conftest.find``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbridge import limits
from gridbridge.bundle import (
    parse_gpu_options,
    read_bundle,
    read_bundle_with_warnings,
    validate_bundle,
)
from gridbridge.bundle.options import format_gpu_options, split_gpu_options
from gridbridge.bundle.validate import MAX_ROWS_REPORTED
from gridbridge.errors import BundleError, InputError
from tests.bundle.conftest import HOURS, TABLES, Bundle, find, problems_of

# ------------------------------------------------------------------------------ the baseline


def test_the_fixture_bundle_is_valid(bundle: Bundle) -> None:
    market, warnings = read_bundle_with_warnings(bundle.path)
    assert warnings == []
    assert market.capacity.height == 16 and market.grid.height == 8 and market.bids.height == 3
    assert market.bid_options.rows() == [
        ("B1", "H100", 2),
        ("B1", "A100", 3),
        ("B2", "A100", 2),
        ("B3", "H100", 1),
    ]
    assert market.config.time_limit_s == 30.0 and market.config.mip_rel_gap == 0.01
    assert market.sites["city"].dtype == pl.String  # extra columns are kept, as text


# ------------------------------------------------------------------------------ market.toml


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("window_start_utc", '"2023-07-03T00:00+02:00"', "not UTC"),
        ("window_start_utc", '"2023-07-03T00:30Z"', "whole hour"),
        ("window_start_utc", '"soon"', "not an ISO 8601 time"),
        ("window_start_utc", '"2023-07-03T00:00"', "no time zone"),
        ("window_start_utc", "2023-07-03T00:00:00", "no time zone"),  # TOML local datetime
        ("window_start_utc", "17", "not a time"),
        ("window_end_utc", '"2023-07-03T00:00Z"', "not after window_start_utc"),
        ("window_end_utc", '"2023-07-02T00:00Z"', "not after window_start_utc"),
        ("carbon_price_eur_per_t", "-1.0", "must be finite and between 0 and 100000"),
        ("carbon_price_eur_per_t", "nan", "must be finite"),
        ("carbon_price_eur_per_t", '"80"', "not a number"),
        ("carbon_price_eur_per_t", "true", "not a number"),
        ("carbon_signal", '"marginal"', "carbon_signal is 'marginal'"),
        ("time_limit_s", "0", "must be finite and > 0"),
        ("mip_rel_gap", "-0.01", "must be finite and >= 0"),
    ],
)
def test_bad_config_values(bundle: Bundle, key: str, value: str, text: str) -> None:
    bundle.set_config(key, value)
    find(problems_of(bundle.path), "market.toml", None, key, text)


@pytest.mark.parametrize(
    "key", ["window_start_utc", "window_end_utc", "carbon_price_eur_per_t", "carbon_signal"]
)
def test_missing_config_key(bundle: Bundle, key: str) -> None:
    bundle.set_config(key, None)
    find(problems_of(bundle.path), "market.toml", None, key, "is missing")


def test_config_accepts_toml_datetimes_and_keeps_unknown_keys(bundle: Bundle) -> None:
    bundle.set_config("window_start_utc", "2023-07-03T00:00:00Z")
    bundle.set_config("window_end_utc", "2023-07-03T04:00:00+00:00")
    bundle.set_config("scenario", '"heatwave"')
    market = read_bundle(bundle.path)
    assert market.config.window_start_utc == datetime(2023, 7, 3, tzinfo=UTC)
    assert market.config.hours == 4
    assert market.config.extra == {"scenario": "heatwave"}


def test_missing_and_unparsable_market_toml(bundle: Bundle) -> None:
    path = bundle.path / "market.toml"
    path.write_text("window_start_utc = \n")
    find(problems_of(bundle.path), "market.toml", None, None, "is not valid TOML")
    path.unlink()
    find(problems_of(bundle.path), "market.toml", None, None, "missing")


def test_market_toml_nested_too_deeply_is_a_problem_not_a_crash(bundle: Bundle) -> None:
    # Found by tests/fuzz: tomllib's RecursionError escaped read_bundle.
    bundle.set_config("scenario", "[" * 5000 + "]" * 5000)
    find(problems_of(bundle.path), "market.toml", None, None, "nested too deeply")


# ------------------------------------------------------------------------------ columns


def test_missing_required_columns_are_all_named_and_rows_not_cascaded(bundle: Bundle) -> None:
    bundle.drop_column("sites", "pue")
    bundle.drop_column("sites", "lat")
    problems = problems_of(bundle.path)
    p = find(problems, "sites.csv", None, "lat, pue", "missing required column(s): lat, pue")
    assert "site_id" in p.fix and "tariff_adder_eur_per_mwh" in p.fix
    assert [q for q in problems if q.file == "sites.csv"] == [p]
    assert len(problems) == 1  # nothing else follows from two absent columns


def test_missing_key_column_skips_dependent_checks(bundle: Bundle) -> None:
    bundle.drop_column("capacity", "hour_utc")
    problems = problems_of(bundle.path)
    find(problems, "capacity.csv", None, "hour_utc", "missing required column(s): hour_utc")
    assert len(problems) == 1  # no duplicate or missing-hours noise


# ------------------------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2023-07-03 01:00", "no time zone"),
        ("2023-07-03T10:00+09:00", "not UTC"),
        ("2023-07-03T01:30Z", "whole hour"),
        ("03/07/2023 01:00", "not an ISO 8601 time"),
    ],
)
def test_bad_capacity_hour(bundle: Bundle, value: str, text: str) -> None:
    bundle.set("capacity", 2, "hour_utc", value)
    problems = problems_of(bundle.path)
    p = find(problems, "capacity.csv", 2, "hour_utc", text)
    assert "2023-07-03T14:00Z" in p.fix
    # The pair with an unreadable hour is not also reported as missing that hour.
    assert not [q for q in problems if "window hours" in q.message]


def test_bad_bid_times(bundle: Bundle) -> None:
    bundle.set("bids", 1, "release_utc", "yesterday")
    bundle.set("bids", 2, "deadline_utc", "2023-07-03T04:00:00+01:00")
    problems = problems_of(bundle.path)
    find(problems, "bids.csv", 1, "release_utc", "not an ISO 8601 time")
    find(problems, "bids.csv", 2, "deadline_utc", "not UTC")


def test_grid_hour_without_zone_is_reported(bundle: Bundle) -> None:
    bundle.set("grid", 5, "hour_utc", "")
    find(problems_of(bundle.path), "grid.csv", 5, "hour_utc", "hour_utc is empty")


# ------------------------------------------------------------------------------ GPU counts


@pytest.mark.parametrize(
    ("table", "column", "value", "text"),
    [
        ("capacity", "gpus_available", "-8", "must be >= 0"),
        ("capacity", "gpus_available", "8.5", "not a whole number"),
        ("capacity", "gpus_available", "eight", "not a number"),
        ("capacity", "gpus_available", "1e300", "too large"),
        ("bids", "gpus", "0", "must be > 0"),
        ("bids", "gpus", "-8", "must be > 0"),
        ("bids", "gpus", "4.5", "not a whole number"),
        ("bids", "gpus", "inf", "not finite"),
    ],
)
def test_bad_gpu_counts(bundle: Bundle, table: str, column: str, value: str, text: str) -> None:
    bundle.set(table, 1, column, value)
    find(problems_of(bundle.path), f"{table}.csv", 1, column, text)


def test_exact_integers_with_a_zero_fraction_are_accepted(bundle: Bundle) -> None:
    bundle.set("capacity", 1, "gpus_available", "8.0")
    bundle.set("bids", 1, "gpus", " 16.00 ")
    market = read_bundle(bundle.path)
    assert market.bids.filter(pl.col("bid_id") == "B1")["gpus"].item() == 16
    assert market.capacity["gpus_available"].dtype == pl.Int64


# ------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("table", "row", "column", "value", "text"),
    [
        ("grid", 1, "price_eur_per_mwh", "NaN", "not finite"),
        ("grid", 2, "carbon_direct_g_per_kwh", "inf", "not finite"),
        ("grid", 3, "carbon_lifecycle_g_per_kwh", "-inf", "not finite"),
        ("grid", 1, "carbon_direct_g_per_kwh", "-1", "must be between 0 and 2000"),
        ("grid", 1, "carbon_lifecycle_g_per_kwh", "-0.5", "must be between 0 and 2000"),
        ("grid", 1, "price_eur_per_mwh", "12,5", "not a number"),
        ("members", 1, "pledge_share", "1.5", "must be between 0 and 1"),
        ("members", 2, "pledge_share", "-0.1", "must be between 0 and 1"),
        ("members", 1, "pledge_share", "nan", "not finite"),
        ("sites", 1, "pue", "0.9", "must be >= 1"),
        ("sites", 1, "lat", "95", "must be between -90 and 90"),
        ("sites", 2, "lon", "-200", "must be between -180 and 180"),
        ("sites", 1, "tariff_adder_eur_per_mwh", "Infinity", "not finite"),
        ("gpus", 1, "it_kw", "0", "must be > 0"),
        ("gpus", 2, "board_kw", "-0.4", "must be > 0"),
        ("bids", 1, "value_eur", "-1", "must be between 0 and 1000000000"),
        ("capacity", 3, "ask_eur_per_gpu_hour", "-0.5", "must be between 0 and 1000"),
        ("capacity", 3, "ask_eur_per_gpu_hour", "nan", "not finite"),
    ],
)
def test_bad_numbers(
    bundle: Bundle, table: str, row: int, column: str, value: str, text: str
) -> None:
    bundle.set(table, row, column, value)
    p = find(problems_of(bundle.path), f"{table}.csv", row, column, text)
    assert value.strip() in p.message


def test_negative_prices_and_zero_values_are_allowed(bundle: Bundle) -> None:
    bundle.set("grid", 1, "price_eur_per_mwh", "-35.2")
    bundle.set("sites", 1, "tariff_adder_eur_per_mwh", "-1.0")
    bundle.set("capacity", 1, "ask_eur_per_gpu_hour", "0")
    bundle.set("bids", 1, "value_eur", "0")
    bundle.set("members", 1, "pledge_share", "1")
    bundle.set("sites", 2, "pue", "1.0")
    market = read_bundle(bundle.path)
    assert market.grid["price_eur_per_mwh"].min() == -35.2


# ------------------------------------------------------------------------------ sane bounds

#: (table, column, its bound in gridbridge.limits): the numbers a bundle brings in from
#: outside whose sane bounds the exchange's contract shares.
BOUNDED = [
    ("grid", "price_eur_per_mwh", limits.PRICE_EUR_PER_MWH),
    ("grid", "carbon_direct_g_per_kwh", limits.CARBON_G_PER_KWH),
    ("grid", "carbon_lifecycle_g_per_kwh", limits.CARBON_G_PER_KWH),
    ("capacity", "ask_eur_per_gpu_hour", limits.ASK_EUR_PER_GPU_HOUR),
    ("bids", "value_eur", limits.BID_VALUE_EUR),
    ("sites", "tariff_adder_eur_per_mwh", limits.TARIFF_ADDER_EUR_PER_MWH),
]


def _outside(limit: limits.Limit) -> list[str]:
    """Values just below and just above ``limit``, as written in a CSV cell."""
    return [repr(limit.low - max(abs(limit.low) * 1e-9, 0.01)),
            repr(limit.high + max(abs(limit.high) * 1e-9, 0.01))]


@pytest.mark.parametrize(
    ("table", "column", "value", "limit"),
    [(t, c, v, lim) for t, c, lim in BOUNDED for v in _outside(lim)],
    ids=[f"{c}-{side}" for _, c, _ in BOUNDED for side in ("below", "above")],
)
def test_a_number_just_outside_its_sane_bounds_is_refused(
    bundle: Bundle, table: str, column: str, value: str, limit: limits.Limit
) -> None:
    bundle.set(table, 2, column, value)
    problems = problems_of(bundle.path)
    p = find(problems, f"{table}.csv", 2, column, f"must be {limit.describe()}")
    assert value in p.message and limit.unit.split()[0] in p.fix
    assert len(problems) == 1  # the one bad cell, no follow-on problems


def test_numbers_on_their_sane_bounds_are_accepted(bundle: Bundle) -> None:
    for table, column, limit in BOUNDED:
        bundle.set(table, 1, column, limits.format_bound(limit.low))
        bundle.set(table, 2, column, limits.format_bound(limit.high))
    market = read_bundle(bundle.path)
    for table, column, limit in BOUNDED:
        values = getattr(market, table)[column]
        assert (values.min(), values.max()) == (limit.low, limit.high), column


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("-0.01", False), ("0", True), ("100000", True), ("100000.01", False), ("1e9", False)],
)
def test_the_carbon_price_must_lie_within_its_sane_bounds(
    bundle: Bundle, value: str, accepted: bool
) -> None:
    bundle.set_config("carbon_price_eur_per_t", value)
    if accepted:
        assert read_bundle(bundle.path).config.carbon_price_eur_per_t == float(value)
        return
    p = find(problems_of(bundle.path), "market.toml", None, "carbon_price_eur_per_t",
             "must be finite and between 0 and 100000 EUR per tonne CO2eq")
    assert "EUR per tonne" in p.fix


def test_empty_required_cell(bundle: Bundle) -> None:
    bundle.set("members", 1, "name", "  ")
    find(problems_of(bundle.path), "members.csv", 1, "name", "name is empty")


# ------------------------------------------------------------------------------ references


def test_unknown_references(bundle: Bundle) -> None:
    bundle.set("capacity", 1, "site_id", "XX-NOWHERE-1")
    bundle.set("capacity", 6, "gpu_type", "B200")
    bundle.set("bids", 2, "gpu_options", "B200:3")
    bundle.set("sites", 2, "member", "FR")
    bundle.set("bids", 3, "member", "JP")
    problems = problems_of(bundle.path)
    find(problems, "capacity.csv", 1, "site_id", "unknown site 'XX-NOWHERE-1'")
    find(problems, "capacity.csv", 6, "gpu_type", "unknown GPU type 'B200'")
    find(problems, "bids.csv", 2, "gpu_options", "unknown GPU type 'B200'")
    find(problems, "sites.csv", 2, "member", "unknown member 'FR'")
    find(problems, "bids.csv", 3, "member", "unknown member 'JP'")
    # The pairs with an unknown site or type are not also reported as lacking hours.
    assert not [
        p
        for p in problems
        if p.field == "hour_utc" and ("XX-NOWHERE-1" in p.message or "B200" in p.message)
    ]


def test_site_zone_without_grid_rows(bundle: Bundle) -> None:
    bundle.set("sites", 1, "zone", "KR-SOUTH")
    find(problems_of(bundle.path), "sites.csv", 1, "zone", "unknown zone 'KR-SOUTH'")


# ------------------------------------------------------------------------------ bids in time


def test_deadline_not_after_release(bundle: Bundle) -> None:
    bundle.set("bids", 2, "deadline_utc", HOURS[1])
    find(problems_of(bundle.path), "bids.csv", 2, "deadline_utc", "not after release_utc")


def test_deadline_after_window_end(bundle: Bundle) -> None:
    bundle.set("bids", 1, "deadline_utc", "2023-07-03T05:00Z")
    find(problems_of(bundle.path), "bids.csv", 1, "deadline_utc", "after the window end")


def test_deadline_before_window_start(bundle: Bundle) -> None:
    bundle.set("bids", 3, "release_utc", "2023-07-02T18:00Z")
    bundle.set("bids", 3, "deadline_utc", "2023-07-02T22:00Z")
    find(problems_of(bundle.path), "bids.csv", 3, "deadline_utc", "not after the window start")


def test_release_before_window_start_is_allowed(bundle: Bundle) -> None:
    market = read_bundle(bundle.path)  # B3 is released at 20:00 the day before
    b3 = market.bids.filter(pl.col("bid_id") == "B3")
    assert b3["release_utc"].item() < market.config.window_start_utc


def test_job_longer_than_its_window(bundle: Bundle) -> None:
    bundle.set("bids", 2, "gpu_options", "A100:4")  # released 01:00, due 04:00: 3 h of room
    p = find(problems_of(bundle.path), "bids.csv", 2, "gpu_options", "needs 4 h but only 3 h")
    assert "faster GPU option" in p.fix


def test_window_start_limits_room_for_early_releases(bundle: Bundle) -> None:
    bundle.set("bids", 3, "gpu_options", "H100:3")  # released before the window, due 02:00
    find(problems_of(bundle.path), "bids.csv", 3, "gpu_options", "needs 3 h but only 2 h")


def test_a_too_long_option_is_fine_when_a_shorter_one_fits(bundle: Bundle) -> None:
    bundle.set("bids", 1, "gpu_options", "A100:9;H100:2")
    market = read_bundle(bundle.path)
    assert market.bid_options.filter(pl.col("bid_id") == "B1").rows() == [
        ("B1", "A100", 9),
        ("B1", "H100", 2),
    ]


# ------------------------------------------------------------------------------ duplicates


@pytest.mark.parametrize(
    ("table", "field", "text"),
    [
        ("members", "member", "duplicate member KR"),
        ("gpus", "gpu_type", "duplicate gpu_type H100"),
        ("sites", "site_id", "duplicate site_id KR-SUWON-1"),
        ("bids", "bid_id", "duplicate bid_id B1"),
        (
            "capacity",
            "site_id, gpu_type, hour_utc",
            "duplicate (site_id, gpu_type, hour_utc) KR-SUWON-1, H100, 2023-07-03T00:00Z",
        ),
        ("grid", "zone, hour_utc", "duplicate (zone, hour_utc) KR, 2023-07-03T00:00Z"),
    ],
)
def test_duplicate_keys(bundle: Bundle, table: str, field: str, text: str) -> None:
    rows = TABLES[table]
    bundle.append(table, rows[1])
    p = find(problems_of(bundle.path), f"{table}.csv", len(rows), field, text)
    assert "already on row 1" in p.message


# ------------------------------------------------------------------------------ gpu_options


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("H100", "is not type:hours"),
        ("H100:x", "not a whole number"),
        ("H100:1.5", "not a whole number"),
        ("H100:0", "at least 1"),
        ("H100:2;", "stray ';'"),
        (":2", "has no GPU type"),
        ("H100:2;H100:3", "listed twice"),
        ("H100:2:3", "is not type:hours"),
    ],
)
def test_malformed_gpu_options(bundle: Bundle, value: str, text: str) -> None:
    bundle.set("bids", 1, "gpu_options", value)
    p = find(problems_of(bundle.path), "bids.csv", 1, "gpu_options", text)
    assert "H100:24;A100:56" in p.fix


def test_empty_gpu_options(bundle: Bundle) -> None:
    bundle.set("bids", 1, "gpu_options", "")
    find(problems_of(bundle.path), "bids.csv", 1, "gpu_options", "gpu_options is empty")


def test_gpu_options_are_normalised(bundle: Bundle) -> None:
    bundle.set("bids", 1, "gpu_options", " H100 : 2 ; A100:3 ")
    market = read_bundle(bundle.path)
    assert market.bids.filter(pl.col("bid_id") == "B1")["gpu_options"].item() == "H100:2;A100:3"


def test_parse_and_format_gpu_options() -> None:
    assert parse_gpu_options("H100:24;A100:56") == {"H100": 24, "A100": 56}
    assert format_gpu_options({"H100": 24, "A100": 56}) == "H100:24;A100:56"
    assert format_gpu_options([("A100", 1)]) == "A100:1"
    assert split_gpu_options("H100:0;A100:x")[1] == [
        "option 'H100:0' has 0 hours; a job needs at least 1",
        "option 'A100:x' has hours 'x', not a whole number",
    ]
    for bad in ("", "H100", "H100:x", "H100:0", "H100:1;H100:2", "H100:-1"):
        with pytest.raises(InputError, match="fix:"):
            parse_gpu_options(bad)
    for options in ({}, {"H1:00": 2}, {"H100": 0}, {"H100": 1.5}, {"H100": True}):
        with pytest.raises(InputError):
            format_gpu_options(options)  # type: ignore[arg-type]


def test_gpu_type_must_fit_into_gpu_options(bundle: Bundle) -> None:
    bundle.append("gpus", ["H100;NVL", "0.95", "0.4"])
    find(problems_of(bundle.path), "gpus.csv", 3, "gpu_type", "contains ':' or ';'")


# ------------------------------------------------------------------------------ completeness


def test_missing_capacity_hours_name_the_pair(bundle: Bundle) -> None:
    bundle.drop_rows(
        "capacity",
        lambda r: (
            not (
                r["site_id"] == "KR-SUWON-1"
                and r["gpu_type"] == "A100"
                and r["hour_utc"] != HOURS[0]
            )
        ),
    )
    p = find(
        problems_of(bundle.path),
        "capacity.csv",
        None,
        "hour_utc",
        "site KR-SUWON-1 × GPU type A100 has no row for 3 of the 4 window hours",
    )
    assert "first missing: 2023-07-03T01:00Z, 2023-07-03T02:00Z, 2023-07-03T03:00Z" in p.message
    assert "gpus_available 0" in p.fix


def test_missing_grid_hours_for_a_used_zone(bundle: Bundle) -> None:
    bundle.drop_rows("grid", lambda r: not (r["zone"] == "KR" and r["hour_utc"] == HOURS[3]))
    find(
        problems_of(bundle.path),
        "grid.csv",
        None,
        "hour_utc",
        "zone KR (used by a site) has no row for 1 of the 4 window hours (first missing: "
        "2023-07-03T03:00Z)",
    )


def test_unused_zone_may_be_incomplete(bundle: Bundle) -> None:
    bundle.append("grid", ["FR", HOURS[0], "50", "60", "70"])
    market = read_bundle(bundle.path)
    assert "FR" in market.grid["zone"].to_list()


def test_rows_outside_the_window_are_dropped_with_a_warning(bundle: Bundle) -> None:
    for site in ("KR-SUWON-1", "CA-TORONTO-1"):
        for gpu in ("H100", "A100"):
            bundle.append("capacity", [site, gpu, "2023-07-03T04:00Z", "8", "1.0"])
    bundle.append("grid", ["KR", "2023-07-02T23:00Z", "400", "450", "90"])
    market, warnings = read_bundle_with_warnings(bundle.path)
    assert market.capacity.height == 16 and market.grid.height == 8
    assert any(w.startswith("capacity.csv: 4 row(s) outside the window") for w in warnings)
    assert any(w.startswith("grid.csv: 1 row(s) outside the window") for w in warnings)


# ------------------------------------------------------------------------------ text rules


@pytest.mark.parametrize("value", ["KR;;CA", "*;KR", ";", "KR;"])
def test_bad_allowed_jurisdictions(bundle: Bundle, value: str) -> None:
    bundle.set("bids", 2, "allowed_jurisdictions", value)
    find(problems_of(bundle.path), "bids.csv", 2, "allowed_jurisdictions", "empty code or mixes")


def test_allowed_jurisdictions_are_normalised(bundle: Bundle) -> None:
    bundle.set("bids", 3, "allowed_jurisdictions", " KR ; CA ")
    market = read_bundle(bundle.path)
    assert market.bids.filter(pl.col("bid_id") == "B3")["allowed_jurisdictions"].item() == "KR;CA"


def test_bid_no_site_can_host_is_a_warning(bundle: Bundle) -> None:
    bundle.set("bids", 2, "allowed_jurisdictions", "FR;JP")
    _, warnings = read_bundle_with_warnings(bundle.path)
    assert any("B2" in w and "can never be placed" in w for w in warnings)


@pytest.mark.parametrize("value", ["KR SUWON 1", "KR/SUWON", "KR-SÜWON", "a?b"])
def test_site_id_must_be_a_slug(bundle: Bundle, value: str) -> None:
    bundle.append("sites", [value, "KR", "KR", "KR", "37.0", "127.0", "1.2", "0", ""])
    find(problems_of(bundle.path), "sites.csv", 3, "site_id", "is not a URL-safe slug")


def test_site_jurisdiction_is_one_code(bundle: Bundle) -> None:
    bundle.set("sites", 1, "jurisdiction", "KR;CA")
    find(problems_of(bundle.path), "sites.csv", 1, "jurisdiction", "not a single jurisdiction")


# ------------------------------------------------------------------------------ empty tables


def test_empty_bid_list_is_valid_with_a_warning(bundle: Bundle) -> None:
    bundle.drop_rows("bids", lambda _r: False)
    market, warnings = read_bundle_with_warnings(bundle.path)
    assert market.bids.is_empty() and market.bid_options.is_empty()
    assert market.bids.schema["release_utc"] == pl.Datetime("us", "UTC")
    assert any("no bids" in w for w in warnings)


def test_empty_sites_table_is_an_error(bundle: Bundle) -> None:
    bundle.drop_rows("sites", lambda _r: False)
    problems = problems_of(bundle.path)
    find(problems, "sites.csv", None, None, "has no rows")
    find(problems, "capacity.csv", 1, "site_id", "unknown site")


# ------------------------------------------------------------------------------ reporting


def test_many_bad_rows_are_capped_per_kind(bundle: Bundle) -> None:
    rows = [TABLES["grid"][0]] + [
        ["KR", f"2023-07-{d:02d}T{h:02d}:00Z", "x", "1", "1"] for d in (4, 5) for h in range(24)
    ]
    bundle.write_rows("grid", TABLES["grid"] + rows[1:])
    problems = [p for p in problems_of(bundle.path) if p.field == "carbon_direct_g_per_kwh"]
    assert len(problems) == MAX_ROWS_REPORTED + 1
    assert [p.row for p in problems[:-1]] == list(range(9, 9 + MAX_ROWS_REPORTED))
    assert problems[-1].row is None
    assert problems[-1].message == "... and 28 more rows with the same problem"


def test_problems_in_many_files_are_reported_together(bundle: Bundle) -> None:
    bundle.set_config("carbon_signal", '"average"')
    bundle.set("members", 1, "pledge_share", "2")
    bundle.set("capacity", 4, "gpus_available", "-1")
    bundle.set("bids", 1, "value_eur", "lots")
    (bundle.path / "gpus.csv").unlink()
    problems = problems_of(bundle.path)
    files = [p.file for p in problems]
    assert files == ["market.toml", "members.csv", "gpus.csv", "capacity.csv", "bids.csv"]


def test_validate_bundle_in_memory() -> None:
    def frame(table: str) -> pl.DataFrame:
        header, *rows = TABLES[table]
        return pl.DataFrame(rows, schema=header, orient="row")

    tables = {t: frame(t) for t in TABLES}
    config = {
        "window_start_utc": "2023-07-03T00:00Z",
        "window_end_utc": "2023-07-03T04:00Z",
        "carbon_price_eur_per_t": 0,
        "carbon_signal": "lifecycle",
    }
    market, warnings = validate_bundle(tables, config)
    assert market.config.carbon_price_eur_per_t == 0.0 and warnings == []
    # Typed frames are judged by the same rules: a naive datetime has no time zone.
    tables["grid"] = tables["grid"].with_columns(
        pl.col("hour_utc").str.to_datetime("%Y-%m-%dT%H:%MZ")
    )
    del tables["members"]
    with pytest.raises(BundleError) as info:
        validate_bundle(tables, config, bundle="memory")
    assert "market bundle memory is invalid" in str(info.value)
    find(info.value.problems, "grid.csv", 1, "hour_utc", "no time zone")
    find(info.value.problems, "members.csv", None, None, "table members is missing")


# ------------------------------------------------------------------------------ property


NUMERIC_CELLS = [
    ("capacity", "gpus_available"),
    ("capacity", "ask_eur_per_gpu_hour"),
    ("grid", "price_eur_per_mwh"),
    ("bids", "gpus"),
    ("sites", "pue"),
    ("members", "pledge_share"),
]
ALL_CELLS = [(t, c) for t, rows in TABLES.items() for c in rows[0]]
junk = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cell=st.sampled_from(ALL_CELLS), row=st.integers(1, 2), value=junk)
def test_junk_in_any_cell_never_escapes_as_another_exception(
    bundle: Bundle, cell: tuple[str, str], row: int, value: str
) -> None:
    """Raw junk (quotes, commas, newlines included) gives a Market or a BundleError."""
    table, column = cell
    path = bundle.file(table)
    original = path.read_bytes()
    try:
        lines = original.decode().split("\n")
        header = lines[0].split(",")
        fields = lines[row].split(",")
        fields[header.index(column)] = value  # unescaped on purpose: may break the CSV
        lines[row] = ",".join(fields)
        path.write_bytes("\n".join(lines).encode())
        try:
            read_bundle(bundle.path)
        except BundleError as exc:
            assert exc.problems and all(p.fix for p in exc.problems)
    finally:
        path.write_bytes(original)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cell=st.sampled_from(NUMERIC_CELLS), value=junk.filter(lambda s: not _is_number(s)))
def test_junk_in_a_number_cell_is_always_a_bundle_error(
    bundle: Bundle, cell: tuple[str, str], value: str
) -> None:
    table, column = cell
    original = bundle.file(table).read_bytes()
    try:
        bundle.set(table, 1, column, value)
        with pytest.raises(BundleError):
            read_bundle(bundle.path)
    finally:
        bundle.file(table).write_bytes(original)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ the other carbon signal


def _empty_column(bundle: Bundle, column: str) -> None:
    rows = bundle.rows("grid")
    i = rows[0].index(column)
    bundle.write_rows("grid", [rows[0], *[[*r[:i], "", *r[i + 1 :]] for r in rows[1:]]])


@pytest.mark.parametrize("signal", ["direct", "lifecycle"])
def test_the_unused_signal_column_may_be_empty(bundle: Bundle, signal: str) -> None:
    other = "lifecycle" if signal == "direct" else "direct"
    bundle.set_config("carbon_signal", f'"{signal}"')
    _empty_column(bundle, f"carbon_{other}_g_per_kwh")
    market = read_bundle(bundle.path)
    assert market.grid[f"carbon_{other}_g_per_kwh"].null_count() == market.grid.height
    assert market.grid[f"carbon_{signal}_g_per_kwh"].null_count() == 0


@pytest.mark.parametrize("signal", ["direct", "lifecycle"])
def test_the_chosen_signal_column_is_still_required(bundle: Bundle, signal: str) -> None:
    bundle.set_config("carbon_signal", f'"{signal}"')
    column = f"carbon_{signal}_g_per_kwh"
    bundle.set("grid", 2, column, "")
    find(problems_of(bundle.path), "grid.csv", 2, column, f"{column} is empty")


def test_filled_cells_of_the_unused_signal_are_still_checked(bundle: Bundle) -> None:
    bundle.set("grid", 1, "carbon_lifecycle_g_per_kwh", "-5")
    bundle.set("grid", 2, "carbon_lifecycle_g_per_kwh", "")
    find(problems_of(bundle.path), "grid.csv", 1, "carbon_lifecycle_g_per_kwh",
         "must be between 0 and 2000")


def test_the_unused_signal_column_must_still_be_present(bundle: Bundle) -> None:
    bundle.drop_column("grid", "carbon_lifecycle_g_per_kwh")
    find(problems_of(bundle.path), "grid.csv", None, "carbon_lifecycle_g_per_kwh",
         "missing required column")


def test_without_a_valid_signal_both_columns_are_required(bundle: Bundle) -> None:
    bundle.set_config("carbon_signal", '"marginal"')
    bundle.set("grid", 1, "carbon_lifecycle_g_per_kwh", "")
    find(problems_of(bundle.path), "grid.csv", 1, "carbon_lifecycle_g_per_kwh", "is empty")

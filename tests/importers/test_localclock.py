"""Local clock -> UTC: fixed offsets, IANA zones, and explicit daylight-saving handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridbridge.errors import DataImportError, InputError
from gridbridge.importers.localclock import localize_hours, parse_clock


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hours(day: tuple[int, int, int], *hh: int) -> list[datetime]:
    return [datetime(*day, h) for h in hh]


@pytest.mark.parametrize(
    ("text", "name", "offset_h"),
    [
        ("+09:00", "+09:00", 9),
        ("-05:00", "-05:00", -5),
        ("UTC-05:00", "-05:00", -5),
        ("UTC+9", "+09:00", 9),
        ("utc+0800", "+08:00", 8),
        ("UTC", "+00:00", 0),
    ],
)
def test_fixed_offsets(text: str, name: str, offset_h: int) -> None:
    clock = parse_clock(text)
    assert clock.fixed
    assert clock.name == name
    assert clock.tz.utcoffset(None) == timedelta(hours=offset_h)


def test_iana_zone() -> None:
    clock = parse_clock(" Europe/Berlin ")
    assert not clock.fixed
    assert clock.name == "Europe/Berlin"


@pytest.mark.parametrize("text", ["Mars/Olympus_Mons", "+25:00", "+09:75", "", "nine"])
def test_bad_clock(text: str) -> None:
    with pytest.raises(InputError, match="fix: give an IANA zone"):
        parse_clock(text)


def test_fixed_offset_conversion() -> None:
    local = hours((2023, 1, 1), 0, 1, 2)
    kst = localize_hours(local, parse_clock("+09:00")).utc
    assert kst == [z(2022, 12, 31, 15), z(2022, 12, 31, 16), z(2022, 12, 31, 17)]
    est = localize_hours(local, parse_clock("UTC-05:00")).utc
    assert est == [z(2023, 1, 1, 5), z(2023, 1, 1, 6), z(2023, 1, 1, 7)]


def test_fixed_offset_has_no_dst() -> None:
    """IESO's EST-all-year clock: the Toronto DST days are ordinary days."""
    local = hours((2023, 3, 12), 1, 2, 3)
    result = localize_hours(local, parse_clock("-05:00"))
    assert result.utc == [z(2023, 3, 12, 6), z(2023, 3, 12, 7), z(2023, 3, 12, 8)]
    assert result.notes == []


def test_iana_seoul_matches_fixed_offset() -> None:
    local = [datetime(2023, 1, 1) + timedelta(hours=h) for h in range(0, 8760, 97)]
    assert (
        localize_hours(local, parse_clock("Asia/Seoul")).utc
        == localize_hours(local, parse_clock("+09:00")).utc
    )


def test_spring_forward_berlin_drops_missing_hour() -> None:
    # Like the DE-LU file: the non-existent 02:00 holds a copy of 03:00's value.
    local = hours((2023, 3, 26), 0, 1, 2, 3, 4)
    values = [39.66, 39.23, 40.12, 40.12, 40.88]
    result = localize_hours(local, parse_clock("Europe/Berlin"), values)
    assert result.utc == [
        z(2023, 3, 25, 23),
        z(2023, 3, 26, 0),
        None,
        z(2023, 3, 26, 1),
        z(2023, 3, 26, 2),
    ]
    (note,) = result.notes
    assert "2023-03-26 02:00 does not exist" in note
    assert "row 3 dropped" in note
    assert "duplicated the 03:00 hour's" in note


def test_spring_forward_london_drops_missing_hour() -> None:
    # Like the GB file: 01:00 (non-existent in London) and 02:00 hold the same value.
    local = hours((2023, 3, 26), 0, 1, 2, 3)
    values = [136.68, 123.38, 123.38, 131.91]
    result = localize_hours(local, parse_clock("Europe/London"), values)
    assert result.utc == [z(2023, 3, 26, 0), None, z(2023, 3, 26, 1), z(2023, 3, 26, 2)]
    (note,) = result.notes
    assert "Europe/London: local 2023-03-26 01:00 does not exist" in note
    assert "duplicated the 02:00 hour's" in note


def test_spring_forward_gap_with_its_own_value() -> None:
    local = hours((2023, 3, 26), 1, 2, 3)
    result = localize_hours(local, parse_clock("Europe/Berlin"), [1.0, 2.0, 3.0])
    assert result.utc[1] is None
    assert "matched neither neighbouring hour" in result.notes[0]


def test_fall_back_hour_twice_berlin() -> None:
    local = hours((2023, 10, 29), 0, 1, 2, 2, 3)
    result = localize_hours(local, parse_clock("Europe/Berlin"))
    assert result.utc == [
        z(2023, 10, 28, 22),
        z(2023, 10, 28, 23),
        z(2023, 10, 29, 0),  # 02:00 CEST (fold=0)
        z(2023, 10, 29, 1),  # 02:00 CET (fold=1)
        z(2023, 10, 29, 2),
    ]
    (note,) = result.notes
    assert "occurs twice (rows 3, 4)" in note
    assert "first maps to 2023-10-29T00:00Z" in note
    assert "second to 2023-10-29T01:00Z" in note


def test_fall_back_hour_once_berlin() -> None:
    # Like the DE-LU file: 8,760 rows, so the repeated 02:00 appears only once.
    local = hours((2023, 10, 29), 1, 2, 3)
    result = localize_hours(local, parse_clock("Europe/Berlin"))
    assert result.utc == [z(2023, 10, 28, 23), z(2023, 10, 29, 0), z(2023, 10, 29, 2)]
    (note,) = result.notes
    assert "occurs once (row 2)" in note
    assert "2023-10-29T00:00Z" in note
    assert "2023-10-29T01:00Z is left missing" in note


def test_fall_back_hour_london_twice_and_once() -> None:
    clock = parse_clock("Europe/London")
    twice = localize_hours(hours((2023, 10, 29), 0, 1, 1, 2), clock).utc
    assert twice == [
        z(2023, 10, 28, 23),
        z(2023, 10, 29, 0),
        z(2023, 10, 29, 1),
        z(2023, 10, 29, 2),
    ]
    once = localize_hours(hours((2023, 10, 29), 0, 1, 2), clock).utc
    assert once == [z(2023, 10, 28, 23), z(2023, 10, 29, 0), z(2023, 10, 29, 2)]


def test_result_keeps_input_order() -> None:
    local = hours((2023, 10, 29), 3, 2, 1, 2)
    result = localize_hours(local, parse_clock("Europe/Berlin"))
    # The first 02:00 in the file (row 2) is the summer-time one.
    assert result.utc == [
        z(2023, 10, 29, 2),
        z(2023, 10, 29, 0),
        z(2023, 10, 28, 23),
        z(2023, 10, 29, 1),
    ]


def test_repeated_ordinary_hour_is_an_error() -> None:
    local = hours((2023, 6, 1), 0, 1, 1, 2)
    with pytest.raises(DataImportError) as info:
        localize_hours(local, parse_clock("Europe/Berlin"), source="de.csv")
    message = str(info.value)
    assert "de.csv, row 3, field 'Datetime'" in message
    assert "2023-06-01 01:00 appears 2 times (rows 2, 3)" in message
    assert "fix:" in message


def test_repeated_hour_on_fixed_clock_is_an_error() -> None:
    with pytest.raises(DataImportError, match="appears 2 times"):
        localize_hours(hours((2023, 10, 29), 2, 2), parse_clock("+01:00"))


def test_fall_back_hour_three_times_is_an_error() -> None:
    with pytest.raises(DataImportError, match="appears 3 times"):
        localize_hours(hours((2023, 10, 29), 2, 2, 2), parse_clock("Europe/Berlin"))


def test_repeated_missing_hour_is_an_error() -> None:
    with pytest.raises(DataImportError, match="appears 2 times"):
        localize_hours(hours((2023, 3, 26), 2, 2), parse_clock("Europe/Berlin"))


def test_half_hour_offset_is_off_the_grid() -> None:
    with pytest.raises(DataImportError, match="off the UTC hour grid"):
        localize_hours(hours((2023, 1, 1), 0), parse_clock("+05:30"))


def test_out_of_range_date() -> None:
    with pytest.raises(DataImportError, match="out of range"):
        localize_hours([datetime(1, 1, 1, 0)], parse_clock("+09:00"))

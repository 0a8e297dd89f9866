"""Hypothesis fuzzing of the file readers with bad files: the market bundle reader and the
raw-data importers (issue 7).

What is tested: :func:`gridbridge.bundle.read_bundle` on copies of the shipped W27 market
bundle with one or two files damaged, and each importer of :mod:`gridbridge.importers`
(Electricity Maps carbon CSV, wholesale prices on a local clock, flat tariff) on damaged
copies of files in the providers' real formats, called as ``gridbridge data`` calls them.
The damage: truncated, spliced or replaced bytes, text that is not UTF-8, NUL bytes, a
renamed, dropped or repeated header, ragged rows and stray quotes, cells replaced by NaN,
infinities, huge or negative numbers, text and bad or shifted timestamps, rows dropped or
repeated, a table switched to Parquet (with text, float or garbage columns), a file
removed, and ``market.toml`` with bad TOML, wrong types, TOML dates, NaN, huge integers and
deep nesting; for the importers also bad zones, clocks, FX rates, currencies and years.

The property: each call returns, or raises a :class:`~gridbridge.errors.GridBridgeError`
whose message names the problem (the file, or the argument at fault) and says how to fix it;
never any other exception. Why: operators feed these readers files from outside (exports,
hand edits, half-copied folders), and a traceback instead of "file, row, field: what — fix"
leaves them guessing.

Bounded: a fixed number of examples per reader with a fixed seed, so a run is repeatable and
takes well under a minute and a half.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from gridbridge.bundle import read_bundle
from gridbridge.errors import BundleError, GridBridgeError
from gridbridge.importers.electricitymaps import read_electricitymaps_csv
from gridbridge.importers.prices import flat_tariff, read_price_csv
from tests.conftest import W27

FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Examples per reader: a bundle read takes about 0.1 s, an importer call a few ms.
BUNDLE_EXAMPLES, IMPORTER_EXAMPLES = 300, 600

# ----------------------------------------------------------------------- damaging text

#: Cells no column wants.
BAD_CELLS = st.one_of(
    st.sampled_from([
        "", " ", "NaN", "nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e308", "-1e308",
        "9" * 40, "-" + "9" * 40, "-1", "-0", "0", "0x10", "1_000", " 12 ", "1,5", "true",
        "null", "2023-13-45T99:00Z", "2023-07-03T00:30Z", "2023-07-03 00:00",
        "2023-07-03T00:00+09:00", "0000-01-01T00:00Z", "0001-01-01T00:00Z",
        "9999-12-31T23:00Z", "2023-07-03", "2023-02-29T00:00Z", "24:00", "H100:0",
        "H100:-5;A100:x", ";", "*;*", "KR;", "é", "\u202e", '"', "\\"]),
    st.text(max_size=10),
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(repr),
)


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@st.composite
def damaged_rows(draw: st.DrawFn, rows: list[list[str]]) -> list[list[str]]:
    """``rows`` (header first) with one structural or cell-level change."""
    rows = [list(r) for r in rows]
    header, body = rows[0], rows[1:]
    column = draw(st.integers(0, len(header) - 1))
    row = draw(st.integers(0, max(len(body) - 1, 0)))
    how = draw(st.sampled_from(["cell", "cell", "cell", "cells", "rename", "drop-column",
                                "repeat-column", "ragged", "drop-rows", "repeat-row",
                                "header-only", "shift-stamps"]))
    if how == "cell" and body:
        body[row][column] = draw(BAD_CELLS)
    elif how == "cells" and body:  # one column spoiled in many rows
        value = draw(BAD_CELLS)
        for r in body[row:]:
            r[column] = value
    elif how == "rename":
        header[column] = draw(st.sampled_from(["", " ", header[column].upper(),
                                               header[column] + " ", "x"]))
    elif how == "drop-column":
        rows = [r[:column] + r[column + 1:] for r in rows]
        return rows
    elif how == "repeat-column":
        rows = [[*r, r[column]] for r in rows]
        return rows
    elif how == "ragged" and body:
        body[row] = body[row][:-1] if draw(st.booleans()) else [*body[row], "extra"]
    elif how == "drop-rows":
        body = body[:row]
    elif how == "repeat-row" and body:
        body.insert(row, list(body[row]))
    elif how == "header-only":
        body = []
    elif how == "shift-stamps" and body:  # every stamp in a column moved by whole or odd hours
        delta = draw(st.sampled_from([timedelta(hours=1), timedelta(hours=-1000),
                                      timedelta(minutes=30), timedelta(days=400)]))
        for r in body:
            r[column] = _shift(r[column], delta)
    return [header, *body]


def _shift(cell: str, delta: timedelta) -> str:
    for fmt in ("%Y-%m-%dT%H:%MZ", "%Y-%m-%d %H:%M:%S"):
        try:
            return (datetime.strptime(cell, fmt) + delta).strftime(fmt)
        except ValueError:
            continue
    return cell


@st.composite
def damaged_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` truncated, spliced with bytes (random, NUL, not UTF-8, a quote), given a
    second byte-order mark or CR line ends, or replaced by garbage."""
    at = draw(st.integers(0, len(data)))
    how = draw(st.sampled_from(["truncate", "splice", "nul", "not-utf-8", "quote", "bom",
                                "crlf", "garbage", "empty"]))
    if how == "truncate":
        return data[:at]
    if how == "splice":
        return data[:at] + draw(st.binary(min_size=1, max_size=20)) + data[at:]
    if how == "nul":
        return data[:at] + b"\x00" + data[at:]
    if how == "not-utf-8":
        return data[:at] + b"\xff\xfe\xc3" + data[at:]
    if how == "quote":
        return data[:at] + b'"' + data[at:]
    if how == "bom":
        return b"\xef\xbb\xbf\xef\xbb\xbf" + data
    if how == "crlf":
        return data.replace(b"\n", b"\r")
    if how == "garbage":
        return draw(st.binary(max_size=300))
    return b""


@st.composite
def damaged_csv(draw: st.DrawFn, text: str) -> bytes:
    """A CSV file's bytes with its rows damaged, its bytes damaged, or both."""
    rows = list(csv.reader(io.StringIO(text)))
    kind = draw(st.sampled_from(["rows", "rows", "bytes", "both"]))
    out = text
    if kind in ("rows", "both"):
        out = _csv_text(draw(damaged_rows(rows)))
    data = out.encode("utf-8")
    if kind in ("bytes", "both"):
        data = draw(damaged_bytes(data))
    return data


# ------------------------------------------------------------------------ market bundle

BUNDLE_TABLES = ("members", "gpus", "sites", "capacity", "grid", "bids")
TOML_KEYS = ("window_start_utc", "window_end_utc", "carbon_price_eur_per_t", "carbon_signal",
             "time_limit_s", "mip_rel_gap")
#: TOML values of every type and some that are not TOML at all.
TOML_VALUES = st.one_of(st.sampled_from([
    "5", "-1", "0", '"x"', '""', "nan", "inf", "-inf", "+nan", "1e400", "true",
    "99999999999999999999999", "2023-07-03T00:00:00Z", "2023-07-03", "00:00:00",
    "2023-07-03T00:00:00", "[1, 2]", "{a = 1}", '"2023-07-03T00:30Z"', '"2023-07-10T00:00Z"',
    '"2023-07-03T00:00Z"', '"2099-01-01T00:00Z"', '"1900-01-01T00:00Z"', '"direct"',
    '"lifecycle"', '"marginal"', "3600", "1e-9", "0.5", "[" * 2000 + "]" * 2000, "", "=",
    '"unterminated', "'single'", '"""multi\nline"""']), st.text(max_size=12).map(repr))


@cache
def _w27() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in W27.iterdir() if p.is_file()}


@st.composite
def damaged_toml(draw: st.DrawFn, text: str) -> bytes:
    """market.toml with a key set to another value, dropped, repeated or added, or its bytes
    damaged."""
    lines = text.splitlines()
    key = draw(st.sampled_from(TOML_KEYS))
    how = draw(st.sampled_from(["set", "set", "set", "drop", "repeat", "unknown", "bytes"]))
    kept = [ln for ln in lines if not ln.startswith(f"{key} =")]
    if how == "set":
        lines = [*kept, f"{key} = {draw(TOML_VALUES)}"]
    elif how == "drop":
        lines = kept
    elif how == "repeat":
        lines = [*lines, *[ln for ln in lines if ln.startswith(f"{key} =")],
                 f"{key} = {draw(TOML_VALUES)}"]
    elif how == "unknown":
        lines = [*lines, f"fuzz_{key} = {draw(TOML_VALUES)}"]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if how == "bytes":
        data = draw(damaged_bytes(data))
    return data


def _as_parquet(rows: list[list[str]], cast: str) -> bytes:
    """``rows`` (header first) as Parquet: text columns, or every column cast to floats or to
    integers where it parses (the rest null). Parquet has no ragged rows or repeated names:
    short rows are padded with nulls, long ones cut, a repeated name gets a suffix."""
    header, body = rows[0], rows[1:]
    names = [name if name not in header[:i] else f"{name}_{i}" for i, name in enumerate(header)]
    frame = pl.DataFrame({name: [r[i] if i < len(r) else None for r in body]
                          for i, name in enumerate(names)}, schema=dict.fromkeys(names, pl.String))
    if cast == "float":
        frame = frame.with_columns(pl.all().cast(pl.Float64, strict=False))
    elif cast == "int":
        frame = frame.with_columns(pl.all().cast(pl.Int64, strict=False))
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


@st.composite
def damaged_bundle(draw: st.DrawFn) -> dict[str, bytes | None]:
    """The W27 bundle's files by name, one or two damaged (None: removed)."""
    files: dict[str, bytes | None] = dict(_w27())
    names = ["market.toml", *(f"{t}.csv" for t in BUNDLE_TABLES)]
    first = draw(st.sampled_from(names))
    second = draw(st.sampled_from([None, *(n for n in names if n != first)]))
    for target in (first, second):
        if target is None:
            continue
        original = _w27()[target]
        how = draw(st.sampled_from(["damage", "damage", "damage", "damage", "remove",
                                    "parquet", "parquet-garbage", "both-formats"]))
        if how == "remove":
            files[target] = None
        elif target == "market.toml":
            files[target] = draw(damaged_toml(original.decode("utf-8")))
        elif how == "damage":
            files[target] = draw(damaged_csv(original.decode("utf-8")))
        elif how == "parquet":
            rows = draw(damaged_rows(_rows(original)))
            files[target] = None
            cast = draw(st.sampled_from(["text", "float", "int"]))
            files[target.replace(".csv", ".parquet")] = _as_parquet(rows, cast)
        elif how == "parquet-garbage":
            files[target] = None
            files[target.replace(".csv", ".parquet")] = draw(
                st.one_of(st.binary(max_size=200), st.just(b"PAR1" + original[:100] + b"PAR1")))
        else:  # both-formats
            files[target.replace(".csv", ".parquet")] = _as_parquet(_rows(original), "text")
    return files


def _problem_named(message: str, names: list[str]) -> bool:
    return any(name in message for name in names) and "fix:" in message


@pytest.mark.slow
@seed(20230703)
@settings(FUZZ, max_examples=BUNDLE_EXAMPLES)
@given(files=damaged_bundle())
def test_a_damaged_bundle_is_read_or_refused_with_every_problem_named(
        files: dict[str, bytes | None]) -> None:
    """read_bundle on a damaged W27 copy: a Market, or a BundleError whose every problem
    names a file of the bundle and a fix — never another exception."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        folder.mkdir()
        for name, data in files.items():
            if data is not None:
                (folder / name).write_bytes(data)
        try:
            read_bundle(folder)
            event("read")
        except BundleError as exc:
            event("refused")
            assert exc.problems, "a BundleError lists its problems"
            names = [*files, "market.toml"]
            for problem in exc.problems:
                assert any(problem.file.startswith(n.split(".")[0]) for n in names), problem
                assert problem.message and problem.fix, problem
            assert _problem_named(str(exc), names), str(exc)


# ------------------------------------------------------------------------ importers

CARBON_HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method")
START = datetime(2023, 7, 3, tzinfo=UTC)


def _stamp(hour: int) -> str:
    return (START + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M:%S")


#: 48 hours of a zone in the Electricity Maps hourly export format (as in ../shared/data).
CARBON_CSV = "\n".join([CARBON_HEADER, *(
    f"{_stamp(h)},South Korea,South Korea,KR,{420.5 + h % 7},{480.25 + h % 5},37.46,1.95,"
    f"new.kpx.or.kr,{'true' if h % 11 == 0 else 'false'},"
    for h in range(48))]) + "\n"
#: 48 local hours of a price file (KRW/MWh on Asia/Seoul, as in ../shared/data).
PRICE_CSV = "\n".join(["Datetime,Price (KRW/MWh)", *(
    f"{_stamp(h)},{185640.0 + 1000 * (h % 9) - 50000 * (h == 5)}" for h in range(48))]) + "\n"

ZONES = st.sampled_from(["KR", "XX", "", " ", "K R", "DE-LU", "é", "KR\n"])
YEARS = st.sampled_from([2023, 2024, 1899, 2201, 0, -1, 10**6, 10**20])
CLOCKS = st.one_of(st.sampled_from([
    "Asia/Seoul", "+09:00", "-05:00", "UTC", "Europe/London", "", " ", "Mars/Base", "+25:00",
    "09:00", "+09:60", "+9", "Z", "-00:00", "+14:00", "-14:00", "../etc/passwd", "Etc/GMT+5",
    "\x00", "Asia/Seoul\n", "America/Toronto"]), st.text(max_size=8))
FX = st.one_of(st.sampled_from([1412.88, 1.0, 0.0, -1.0, math.nan, math.inf, -math.inf,
                                1e308, 5e-324, 1e-300]), st.floats())
CURRENCIES = st.sampled_from(["KRW", "EUR", "krw", "K", "", "KRWX", "€", "CAD"])


def _usually(valid: Any, wild: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` three times in four, else a ``wild`` value: the file's damage is what is
    fuzzed, so the arguments are right most of the time (each has its own wild ones)."""
    return st.sampled_from(range(4)).flatmap(lambda k: wild if k == 0 else st.just(valid))


def _check_refusal(exc: GridBridgeError, path: Path | None, arguments: list[str]) -> None:
    """The message names the file or one of the ``arguments`` it blames, and has content."""
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    named = (path is not None and path.name in message) or any(a in message.lower()
                                                                for a in arguments)
    assert named, f"the message names neither the file nor an argument: {message}"


def _run_importer(data: bytes, name: str, call: Callable[[Path], Any],
                  arguments: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            call(path)
            event("imported")
        except GridBridgeError as exc:
            event(f"refused: {type(exc).__name__}")
            _check_refusal(exc, path, arguments)


@pytest.mark.slow
@seed(20230704)
@settings(FUZZ, max_examples=IMPORTER_EXAMPLES)
@given(data=damaged_csv(CARBON_CSV), zone=_usually(None, ZONES),
       year=_usually(None, st.one_of(YEARS, st.none())))
def test_a_damaged_carbon_export_is_imported_or_refused_with_the_problem_named(
        data: bytes, zone: str | None, year: int | None) -> None:
    """read_electricitymaps_csv on a damaged Electricity Maps export (with any zone and
    year): a table, or a GridBridgeError naming the file or the zone/year at fault."""
    _run_importer(data, "KR_2023_hourly.csv",
                  lambda p: read_electricitymaps_csv(p, zone=zone, year=year),
                  ["zone", "year"])


@pytest.mark.slow
@seed(20230705)
@settings(FUZZ, max_examples=IMPORTER_EXAMPLES)
@given(data=damaged_csv(PRICE_CSV), zone=_usually("KR", ZONES),
       clock=_usually("Asia/Seoul", CLOCKS), fx=_usually(1412.88, FX),
       currency=_usually(None, CURRENCIES), year=_usually(None, YEARS))
def test_a_damaged_price_file_is_imported_or_refused_with_the_problem_named(
        data: bytes, zone: str, clock: str, fx: float, currency: str | None,
        year: int | None) -> None:
    """read_price_csv on a damaged local-clock price file (with any zone, clock, FX rate,
    currency and year): a table, or a GridBridgeError naming the file or the argument at
    fault."""
    _run_importer(data, "KR_electricity_prices_2023.csv",
                  lambda p: read_price_csv(p, zone, clock, fx, currency=currency, year=year),
                  ["zone", "clock", "fx", "currency", "year", "1 eur"])


@pytest.mark.slow
@seed(20230706)
@settings(FUZZ, max_examples=IMPORTER_EXAMPLES)
@given(zone=_usually("CA-QC", ZONES), year=_usually(2023, YEARS), value=_usually(65.0, FX),
       currency=_usually("CAD", CURRENCIES), fx=_usually(1.4595, FX))
def test_a_flat_tariff_is_made_or_refused_with_the_argument_named(
        zone: str, year: int, value: float, currency: str, fx: float) -> None:
    """flat_tariff with any arguments: a year of hours, or a GridBridgeError naming the
    argument at fault."""
    try:
        result = flat_tariff(zone, year, value, currency, fx)
    except GridBridgeError as exc:
        _check_refusal(exc, None, ["zone", "year", "tariff", "currency", "fx", "1 eur"])
        return
    assert result.frame.height in (8760, 8784)

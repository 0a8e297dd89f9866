"""Strict validation of a market bundle: raw string tables + ``market.toml`` -> :class:`Market`.

Pure: no files. The reader hands over every table as a frame of strings (CSV cells as read,
Parquet values rendered by :func:`frame_as_strings`), so CSV and Parquet bundles go through
the same rules and get the same messages. Every finding is a :class:`Problem` naming the file,
the 1-based data row (header not counted), the field, what is wrong and the fix. All findings
are collected in one pass; a check that depends on a missing column or an unreadable table is
skipped rather than reported as a cascade of follow-on errors. Per (file, field, kind) at most
:data:`MAX_ROWS_REPORTED` rows are listed, then one "... and N more rows" line.

Rules and decisions (units as in DESIGN.md: UTC hour-beginning stamps, half-open intervals):

* Text cells are stripped of surrounding spaces; an empty cell is a missing value. Extra
  columns are kept verbatim as strings.
* Numbers must be finite (no NaN/inf). GPU counts (``capacity.gpus_available`` >= 0,
  ``bids.gpus`` >= 1) are whole numbers; an exact integer written with a zero fraction
  (``8.0``, as spreadsheets and float Parquet columns produce) is accepted, ``8.5`` is not.
  Prices (``price_eur_per_mwh``, ``tariff_adder_eur_per_mwh``) may be negative; intensities,
  asks and bid values may not. ``pue`` >= 1, ``pledge_share`` in [0, 1], ``it_kw`` and
  ``board_kw`` > 0, ``lat`` in [-90, 90], ``lon`` in [-180, 180].
* Times must be UTC whole hours (see :mod:`gridbridge.hours`); the window must be hour-aligned
  with ``window_end_utc`` > ``window_start_utc``.
* Keys are unique: ``members.member``, ``gpus.gpu_type``, ``sites.site_id``, ``bids.bid_id``,
  ``capacity`` (site_id, gpu_type, hour_utc), ``grid`` (zone, hour_utc). ``site_id`` is a
  URL-safe slug (letters, digits, ``-``, ``_``, ``.``). ``gpu_type`` may not contain ``:`` or
  ``;`` (it must fit into ``gpu_options``).
* References resolve: sites/bids ``member`` in members; capacity ``site_id`` in sites; capacity
  and bid-option ``gpu_type`` in gpus; every site's ``zone`` has rows in grid.
* Completeness: every (site_id, gpu_type) pair that appears in capacity has a row for every
  window hour (a site offers zero GPUs by writing 0), and every zone used by a site has grid
  rows for every window hour. Rows outside the window are allowed (a year of grid data can
  serve a one-week round): they are validated like any row, then dropped from the Market,
  and a warning says how many.
* Bids: ``deadline_utc`` > ``release_utc`` and ``window_start_utc`` < ``deadline_utc`` <=
  ``window_end_utc``. A release before the window start is allowed: the job simply cannot
  start before the window. The shortest option must fit between max(release, window start)
  and the deadline; longer options that do not fit are fine (they will never be chosen).
  ``allowed_jurisdictions`` is ``*`` or a ``;``-list of non-empty codes.
* ``members``, ``gpus`` and ``sites`` must have rows. An empty ``bids`` table is valid and
  yields a warning, as do an empty capacity window and bids no site's jurisdiction admits.

The resulting Market is canonical: each table sorted by its key (``bid_options`` by bid, then
in the order the bid lists its options), ``gpu_options`` and ``allowed_jurisdictions`` written
in normal form, so writing and re-reading a bundle gives an equal Market.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import polars as pl

from gridbridge.bundle.options import (
    GPU_OPTIONS_FIX,
    bid_options_table,
    format_gpu_options,
    split_gpu_options,
)
from gridbridge.errors import BundleError, Problem
from gridbridge.hours import HOUR_FORMAT, HourParseError, format_hour, parse_hour, parse_hour_column
from optim.market import CARBON_SIGNALS, SCHEMAS, TABLES, Market, MarketConfig

__all__ = [
    "CONFIG_FILE",
    "KEYS",
    "MAX_ROWS_REPORTED",
    "BundleCheck",
    "check_bundle",
    "frame_as_strings",
    "order_problems",
    "validate_bundle",
]

CONFIG_FILE = "market.toml"
#: Rows listed per (file, field, kind) before "... and N more rows".
MAX_ROWS_REPORTED = 20
#: Internal 1-based row number column; the odd name cannot clash with a user's column.
ROW = "__gridbridge_row__"
SLUG_PATTERN = r"^[A-Za-z0-9._-]+$"
#: Keys each table is unique by and sorted by in the Market.
KEYS: dict[str, tuple[str, ...]] = {
    "members": ("member",),
    "gpus": ("gpu_type",),
    "sites": ("site_id",),
    "capacity": ("site_id", "gpu_type", "hour_utc"),
    "grid": ("zone", "hour_utc"),
    "bids": ("bid_id",),
}
_WINDOW_KEYS = ("window_start_utc", "window_end_utc")
_CONFIG_KEYS = (
    *_WINDOW_KEYS,
    "carbon_price_eur_per_t",
    "carbon_signal",
    "time_limit_s",
    "mip_rel_gap",
)
# Beyond 2**53 a float no longer holds every integer, so "1e300" is not an exact GPU count.
_MAX_EXACT_INT = 2.0**53


@dataclass(frozen=True, slots=True)
class _Range:
    """The legal range of a numeric column; ``None`` bounds are open-ended."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    integer: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return "finite"


#: Numeric required columns: their range and the fix that says what to write.
_NUMBERS: dict[tuple[str, str], tuple[_Range, str]] = {
    ("members", "pledge_share"): (
        _Range(0, high=1),
        "write the member's pledged share as a fraction from 0 to 1, e.g. 0.2",
    ),
    ("gpus", "it_kw"): (
        _Range(0, low_open=True),
        "write the IT power per GPU in kW including its share of the node, e.g. 1.275",
    ),
    ("gpus", "board_kw"): (
        _Range(0, low_open=True),
        "write the GPU board power in kW, e.g. 0.7",
    ),
    ("sites", "lat"): (_Range(-90, high=90), "write the latitude in decimal degrees, -90..90"),
    ("sites", "lon"): (_Range(-180, high=180), "write the longitude in decimal degrees, -180..180"),
    ("sites", "pue"): (
        _Range(1),
        "write the site's PUE (facility energy / IT energy), at least 1.0, e.g. 1.3",
    ),
    ("sites", "tariff_adder_eur_per_mwh"): (
        _Range(),
        "write the tariff adder in EUR/MWh as a finite number (negative is allowed)",
    ),
    ("capacity", "gpus_available"): (
        _Range(0, integer=True),
        "write the number of free GPUs as a whole number, 0 or more",
    ),
    ("capacity", "ask_eur_per_gpu_hour"): (
        _Range(0),
        "write the site's ask in EUR per GPU-hour, 0 or more",
    ),
    ("grid", "carbon_direct_g_per_kwh"): (
        _Range(0),
        "write the direct carbon intensity in gCO2eq/kWh, 0 or more",
    ),
    ("grid", "carbon_lifecycle_g_per_kwh"): (
        _Range(0),
        "write the lifecycle carbon intensity in gCO2eq/kWh, 0 or more",
    ),
    ("grid", "price_eur_per_mwh"): (
        _Range(),
        "write the wholesale price in EUR/MWh as a finite number (negative prices are allowed)",
    ),
    ("bids", "gpus"): (
        _Range(0, low_open=True, integer=True),
        "write how many GPUs the job needs as a whole number, 1 or more",
    ),
    ("bids", "value_eur"): (
        _Range(0),
        "write the most the member will pay for the whole job in EUR, 0 or more",
    ),
}

#: Fixes for missing text cells, by column.
_TEXT_FIX: dict[str, str] = {
    "member": "write the member's ISO code, e.g. KR",
    "name": "write the member's name",
    "gpu_type": "write the GPU type, e.g. H100",
    "site_id": "write the site id, e.g. KR-SUWON-1",
    "zone": "write the grid zone, e.g. KR",
    "jurisdiction": "write the site's jurisdiction code, e.g. KR",
    "bid_id": "write a unique bid id",
    "gpu_options": GPU_OPTIONS_FIX,
    "allowed_jurisdictions": "write '*' or a ';'-list of jurisdiction codes, e.g. KR;CA",
}


@dataclass(frozen=True, slots=True)
class BundleCheck:
    """The outcome of :func:`check_bundle`: a Market only when ``problems`` is empty."""

    market: Market | None
    problems: list[Problem]
    warnings: list[str]


class _Report:
    """Collects problems, capping rows per (file, field, kind)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def add(self, file: str, row: int | None, field: str | None, message: str, fix: str) -> None:
        self.problems.append(Problem(file, row, field, message, fix))

    def entries(
        self, file: str, field: str | None, entries: Iterable[tuple[int, str, str]], total: int
    ) -> None:
        """Report the first rows of one kind of problem, then how many more there are."""
        last_fix = ""
        for row, message, fix in entries:
            self.add(file, row, field, message, fix)
            last_fix = fix
        if total > MAX_ROWS_REPORTED:
            self.add(
                file,
                None,
                field,
                f"... and {total - MAX_ROWS_REPORTED} more rows with the same problem",
                last_fix,
            )

    def rows(
        self,
        file: str,
        field: str | None,
        hits: pl.DataFrame,
        render: Callable[[dict[str, Any]], str],
        fix: str,
    ) -> None:
        """Report the rows of ``hits`` (with a ``ROW`` column); only the first few are rendered."""
        if hits.is_empty():
            return
        hits = hits.sort(ROW)
        shown = hits.head(MAX_ROWS_REPORTED).iter_rows(named=True)
        self.entries(file, field, ((r[ROW], render(r), fix) for r in shown), hits.height)


@dataclass(slots=True)
class _Table:
    """One bundle table while it is checked: raw strings and the parsed required columns."""

    name: str
    file: str
    raw: pl.DataFrame  # every column String, plus ROW
    text: dict[str, pl.Series]  # required text, stripped; '' -> null
    typed: dict[str, pl.Series]  # parsed required columns; null where missing or invalid

    def has(self, *columns: str) -> bool:
        return all(c in self.typed for c in columns)

    def frame(self, *columns: str) -> pl.DataFrame:
        return pl.DataFrame([self.raw[ROW], *(self.typed[c] for c in columns)])

    @property
    def height(self) -> int:
        return self.raw.height


# --------------------------------------------------------------------------------------------
# Typed values -> strings (shared with the Parquet reader)


def _datetime_text(column: pl.Series) -> pl.Series:
    """Render datetimes so that :func:`parse_hour_column` judges them as if typed in a CSV.

    tz-naive values get no offset (so they are reported as lacking a time zone), zoned ones
    carry their real offset (so non-UTC zones are reported), and sub-hour parts are kept (so
    14:30 is reported). UTC whole hours take the short form, the parser's fast path.
    """
    dtype = cast(pl.Datetime, column.dtype)
    full = "%Y-%m-%dT%H:%M:%S%.f"
    if dtype.time_zone is None:
        return column.dt.strftime(full)
    zoned = column.dt.strftime(full + "%:z")
    if dtype.time_zone == "UTC":
        whole = column.dt.truncate("1h") == column
        return pl.select(
            pl.when(pl.lit(whole))
            .then(pl.lit(column.dt.strftime(HOUR_FORMAT)))
            .otherwise(pl.lit(zoned))
        ).to_series()
    return zoned


def frame_as_strings(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    """Every column as String, plus ``(column, reason)`` for columns that cannot be text.

    Numbers use polars' text form (``8``, ``8.0``, ``NaN``, ``inf``) so the validator's own
    number rules apply; datetimes follow :func:`_datetime_text`. Nested and binary columns
    (lists, structs) are left out and reported.
    """
    out: list[pl.Series] = []
    bad: list[tuple[str, str]] = []
    for column in frame.get_columns():
        if column.dtype == pl.String:
            out.append(column)
        elif isinstance(column.dtype, pl.Datetime):
            out.append(_datetime_text(column).alias(column.name))
        elif column.dtype.is_nested() or column.dtype in (pl.Binary, pl.Object):
            bad.append((column.name, f"has type {column.dtype}, which a bundle cell cannot hold"))
        else:
            try:
                out.append(column.cast(pl.String))
            except pl.exceptions.PolarsError:
                bad.append((column.name, f"has type {column.dtype}, which cannot be read as text"))
    return pl.DataFrame(out), bad


# --------------------------------------------------------------------------------------------
# Cell parsers: each reports bad cells and returns the typed column (null where bad)


def _text_column(rep: _Report, t: _Table, column: str) -> pl.Series:
    values = t.raw[column].str.strip_chars().replace("", None)
    hits = pl.DataFrame([t.raw[ROW], values]).filter(pl.col(column).is_null())
    fix = _TEXT_FIX.get(column, f"fill in {column}")
    rep.rows(t.file, column, hits, lambda _r: f"{column} is empty", fix)
    return values


def _number_column(
    rep: _Report, t: _Table, column: str, text: pl.Series, spec: _Range, fix: str
) -> pl.Series:
    """Parse a numeric column by ``spec``; every defect is reported once per cell."""
    as_float = text.cast(pl.Float64, strict=False)
    df = pl.DataFrame([t.raw[ROW], text.alias("text"), as_float.alias("f")])
    f = pl.col("f")
    has_text = pl.col("text").is_not_null()
    # Null-safe: `is_finite` is null for a null f, and filter drops nulls.
    rep.rows(
        t.file,
        column,
        df.filter(has_text & f.is_null()),
        lambda r: f"{column} '{r['text']}' is not a number",
        fix,
    )
    rep.rows(
        t.file,
        column,
        df.filter(~f.is_finite()),
        lambda r: f"{column} '{r['text']}' is not finite (NaN and infinity are not allowed)",
        fix,
    )
    finite = pl.when(f.is_finite()).then(f)
    if spec.integer:
        as_int = text.cast(pl.Int64, strict=False)
        df = df.with_columns(as_int.alias("i"))
        i = pl.col("i")
        exact = f.is_finite() & (f == f.floor()) & (f.abs() < _MAX_EXACT_INT)
        rep.rows(
            t.file,
            column,
            df.filter(i.is_null() & f.is_finite() & (f != f.floor())),
            lambda r: f"{column} '{r['text']}' is not a whole number",
            fix,
        )
        rep.rows(
            t.file,
            column,
            df.filter(i.is_null() & f.is_finite() & (f == f.floor()) & ~exact),
            lambda r: f"{column} '{r['text']}' is too large",
            fix,
        )
        df = df.with_columns(pl.coalesce(i, pl.when(exact).then(f.cast(pl.Int64))).alias("value"))
    else:
        df = df.with_columns(finite.alias("value"))
    value = pl.col("value")
    out_of_range = pl.lit(False)
    if spec.low is not None:
        out_of_range = out_of_range | ((value <= spec.low) if spec.low_open else (value < spec.low))
    if spec.high is not None:
        out_of_range = out_of_range | (value > spec.high)
    rep.rows(
        t.file,
        column,
        df.filter(out_of_range),
        lambda r: f"{column} '{r['text']}' must be {spec.describe()}",
        fix,
    )
    return df.select(pl.when(~out_of_range).then(value).alias(column)).to_series()


def _time_column(rep: _Report, t: _Table, column: str, text: pl.Series) -> pl.Series:
    parsed, errors = parse_hour_column(text)
    rows = t.raw[ROW]
    first = sorted(errors)[:MAX_ROWS_REPORTED]
    rep.entries(
        t.file,
        column,
        ((rows[i], f"{column} {errors[i]}", errors[i].fix) for i in first),
        len(errors),
    )
    return parsed.alias(column)


def _parse_table(rep: _Report, name: str, file: str, raw: pl.DataFrame) -> _Table:
    """Check a table's columns and parse every required cell.

    Missing required columns are named all at once; checks that need them are skipped, while
    the columns that are present are still checked and still serve as reference targets.
    """
    raw, unreadable = frame_as_strings(raw)
    for column, reason in unreadable:
        rep.add(
            file,
            None,
            column,
            f"column '{column}' {reason}",
            "store the column as text or plain numbers",
        )
    schema = SCHEMAS[name]
    unreadable_names = {c for c, _ in unreadable}
    missing = [c for c in schema if c not in raw.columns and c not in unreadable_names]
    if missing:
        rep.add(
            file,
            None,
            ", ".join(missing),
            f"missing required column(s): {', '.join(missing)}",
            f"add them to the header; {file} needs the columns {', '.join(schema)}",
        )
    raw = raw.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    t = _Table(name, file, raw, {}, {})
    for column, dtype in schema.items():
        if column not in raw.columns:
            continue
        text = _text_column(rep, t, column)
        t.text[column] = text
        if dtype == pl.String:
            t.typed[column] = text
        elif isinstance(dtype, pl.Datetime):
            t.typed[column] = _time_column(rep, t, column, text)
        else:
            spec, fix = _NUMBERS[(name, column)]
            t.typed[column] = _number_column(rep, t, column, text, spec, fix)
    return t


# --------------------------------------------------------------------------------------------
# Table-level checks


def _show(value: object) -> str:
    return format_hour(value) if isinstance(value, datetime) else str(value)


def _check_unique(rep: _Report, t: _Table) -> None:
    keys = list(KEYS[t.name])
    if not t.has(*keys):
        return
    df = t.frame(*keys).drop_nulls(keys)
    df = df.with_columns(pl.col(ROW).min().over(keys).alias("first"))
    hits = df.filter(pl.col(ROW) != pl.col("first"))
    label = keys[0] if len(keys) == 1 else f"({', '.join(keys)})"

    def render(r: dict[str, Any]) -> str:
        key = ", ".join(_show(r[k]) for k in keys)
        return f"duplicate {label} {key}: already on row {r['first']}"

    fix = f"keep one row per {label} in {t.file}"
    rep.rows(t.file, ", ".join(keys), hits, render, fix)


def _check_pattern(
    rep: _Report, t: _Table, column: str, bad: pl.Expr, message: str, fix: str
) -> None:
    if not t.has(column):
        return
    hits = t.frame(column).filter(pl.col(column).is_not_null() & bad)
    rep.rows(t.file, column, hits, lambda r: f"{column} '{r[column]}' {message}", fix)


def _check_reference(
    rep: _Report, t: _Table, column: str, target: _Table | None, target_column: str, noun: str
) -> None:
    """Report rows whose ``column`` names no row of ``target`` (skipped if target unknown)."""
    if target is None or not t.has(column) or target_column not in target.text:
        return
    known = target.text[target_column].drop_nulls().unique()
    hits = t.frame(column).filter(
        pl.col(column).is_not_null() & ~pl.col(column).is_in(known.implode())
    )
    rep.rows(
        t.file,
        column,
        hits,
        lambda r: f"unknown {noun} '{r[column]}': not in {target.file}",
        f"add the {noun} to {target.file} or correct the {column}",
    )


def _check_not_empty(rep: _Report, t: _Table) -> None:
    if t.height == 0:
        rep.add(
            t.file,
            None,
            None,
            f"{t.file} has no rows",
            f"add at least one row: a market needs {t.name}",
        )


def _window_hours(window: tuple[datetime, datetime]) -> pl.Series:
    return pl.datetime_range(
        window[0], window[1], "1h", closed="left", eager=True, time_unit="us", time_zone="UTC"
    ).alias("hour_utc")


def _first_hours(hours: list[datetime], shown: int = 5) -> str:
    text = ", ".join(format_hour(h) for h in hours[:shown])
    return text + (", ..." if len(hours) > shown else "")


def _check_complete(
    rep: _Report,
    t: _Table,
    groups: pl.DataFrame,
    window: tuple[datetime, datetime],
    what: Callable[[dict[str, Any]], str],
    fix: str,
) -> None:
    """Each row of ``groups`` (key columns) must have a row in ``t`` for every window hour."""
    keys = groups.columns
    if groups.is_empty():
        return
    expected = groups.join(_window_hours(window).to_frame(), how="cross")
    present = t.frame(*keys, "hour_utc").drop_nulls()
    missing = expected.join(present, on=[*keys, "hour_utc"], how="anti")
    if missing.is_empty():
        return
    summary = (
        missing.sort([*keys, "hour_utc"])
        .group_by(keys, maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("hour_utc").head(6).alias("first"))
    )
    total = expected.height // groups.height
    items = [
        (
            f"{what(r)} has no row for {r['n']} of the {total} window hours "
            f"(first missing: {_first_hours(r['first'])})"
        )
        for r in summary.head(MAX_ROWS_REPORTED).iter_rows(named=True)
    ]
    for message in items:
        rep.add(t.file, None, "hour_utc", message, fix)
    if summary.height > MAX_ROWS_REPORTED:
        rep.add(
            t.file,
            None,
            "hour_utc",
            f"... and {summary.height - MAX_ROWS_REPORTED} more with missing hours",
            fix,
        )


# --------------------------------------------------------------------------------------------
# market.toml


def _config_time(rep: _Report, key: str, value: object) -> datetime | None:
    fix = f'write {key} = "2023-07-03T00:00Z" (UTC, on a whole hour)'
    if isinstance(value, datetime):
        # TOML offset/local date-times arrive as datetime; judge them by the same rules.
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        rep.add(CONFIG_FILE, None, key, f"{key} is {value!r}, not a time", fix)
        return None
    try:
        return parse_hour(text)
    except HourParseError as exc:
        rep.add(CONFIG_FILE, None, key, f"{key} {exc}", fix)
        return None


def _config_number(
    rep: _Report, config: Mapping[str, object], key: str, *, positive: bool, fix: str
) -> float | None:
    value = config[key]
    # bool is an int in Python but `true` is not a number in a config file.
    if isinstance(value, bool) or not isinstance(value, int | float):
        rep.add(CONFIG_FILE, None, key, f"{key} is {value!r}, not a number", fix)
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        rule = "> 0" if positive else ">= 0"
        rep.add(CONFIG_FILE, None, key, f"{key} is {value!r}; it must be finite and {rule}", fix)
        return None
    return number


def _check_config(
    rep: _Report, config: Mapping[str, object]
) -> tuple[tuple[datetime, datetime] | None, MarketConfig | None]:
    """Validate market.toml; returns the window (if valid) and the config (if all valid)."""
    before = len(rep.problems)
    for key in ("window_start_utc", "window_end_utc", "carbon_price_eur_per_t", "carbon_signal"):
        if key not in config:
            rep.add(
                CONFIG_FILE,
                None,
                key,
                f"{key} is missing",
                f"add {key} to {CONFIG_FILE} (see DESIGN.md 'Market bundle')",
            )
    start = (
        _config_time(rep, "window_start_utc", config["window_start_utc"])
        if ("window_start_utc" in config)
        else None
    )
    end = (
        _config_time(rep, "window_end_utc", config["window_end_utc"])
        if ("window_end_utc" in config)
        else None
    )
    window: tuple[datetime, datetime] | None = None
    if start is not None and end is not None:
        if end <= start:
            rep.add(
                CONFIG_FILE,
                None,
                "window_end_utc",
                f"window_end_utc {format_hour(end)} is not after window_start_utc "
                f"{format_hour(start)}",
                "set window_end_utc later than window_start_utc (the end is exclusive)",
            )
        else:
            window = (start, end)
    price = None
    if "carbon_price_eur_per_t" in config:
        price = _config_number(
            rep,
            config,
            "carbon_price_eur_per_t",
            positive=False,
            fix="write the carbon price in EUR per tonne CO2eq, e.g. 80.0",
        )
    signal = config.get("carbon_signal")
    if "carbon_signal" in config and signal not in CARBON_SIGNALS:
        rep.add(
            CONFIG_FILE,
            None,
            "carbon_signal",
            f"carbon_signal is {signal!r}",
            'write carbon_signal = "direct" or carbon_signal = "lifecycle"',
        )
    limits: dict[str, float | None] = {"time_limit_s": None, "mip_rel_gap": None}
    if "time_limit_s" in config:
        limits["time_limit_s"] = _config_number(
            rep,
            config,
            "time_limit_s",
            positive=True,
            fix="write the solver time limit in seconds, > 0, e.g. 60",
        )
    if "mip_rel_gap" in config:
        limits["mip_rel_gap"] = _config_number(
            rep,
            config,
            "mip_rel_gap",
            positive=False,
            fix="write the relative MIP gap as a fraction >= 0, e.g. 0.01 for 1 %",
        )
    if len(rep.problems) > before or window is None or price is None:
        return window, None
    extra = {k: v for k, v in config.items() if k not in _CONFIG_KEYS}
    market_config = MarketConfig(
        window_start_utc=window[0],
        window_end_utc=window[1],
        carbon_price_eur_per_t=price,
        carbon_signal=cast(Any, signal),
        time_limit_s=limits["time_limit_s"],
        mip_rel_gap=limits["mip_rel_gap"],
        extra=extra,
    )
    return window, market_config


# --------------------------------------------------------------------------------------------
# Per-table rules


def _check_sites(rep: _Report, sites: _Table, members: _Table | None, grid: _Table | None) -> None:
    _check_pattern(
        rep,
        sites,
        "site_id",
        ~pl.col("site_id").str.contains(SLUG_PATTERN),
        "is not a URL-safe slug",
        "use only letters, digits, '-', '_' and '.', e.g. KR-SUWON-1",
    )
    _check_pattern(
        rep,
        sites,
        "jurisdiction",
        pl.col("jurisdiction").str.contains(";", literal=True) | (pl.col("jurisdiction") == "*"),
        "is not a single jurisdiction code",
        "write one code such as KR (no ';' or '*')",
    )
    _check_reference(rep, sites, "member", members, "member", "member")
    if grid is None or not sites.has("zone") or "zone" not in grid.text:
        return
    known = grid.text["zone"].drop_nulls().unique().implode()
    hits = sites.frame("zone").filter(pl.col("zone").is_not_null() & ~pl.col("zone").is_in(known))
    rep.rows(
        sites.file,
        "zone",
        hits,
        lambda r: f"unknown zone '{r['zone']}': {grid.file} has no rows for it",
        f"add the zone's hourly carbon and price rows to {grid.file} or correct the zone",
    )


def _check_capacity(
    rep: _Report,
    capacity: _Table,
    sites: _Table | None,
    gpus: _Table | None,
    window: tuple[datetime, datetime] | None,
) -> None:
    _check_reference(rep, capacity, "site_id", sites, "site_id", "site")
    _check_reference(rep, capacity, "gpu_type", gpus, "gpu_type", "GPU type")
    if window is None or not capacity.has("site_id", "gpu_type", "hour_utc"):
        return
    df = capacity.frame("site_id", "gpu_type", "hour_utc").drop_nulls(["site_id", "gpu_type"])
    # A pair with an unparsable hour already has its error; don't also call its hours missing.
    unsure = df.filter(pl.col("hour_utc").is_null()).select("site_id", "gpu_type")
    pairs = (
        df.select("site_id", "gpu_type")
        .unique()
        .join(unsure, on=["site_id", "gpu_type"], how="anti")
        .sort("site_id", "gpu_type")
    )
    # Likewise a pair naming an unknown site or GPU type: its one error says it all.
    for column, target in (("site_id", sites), ("gpu_type", gpus)):
        if target is not None and column in target.text:
            known = target.text[column].drop_nulls().unique().implode()
            pairs = pairs.filter(pl.col(column).is_in(known))
    _check_complete(
        rep,
        capacity,
        pairs,
        window,
        lambda r: f"site {r['site_id']} × GPU type {r['gpu_type']}",
        "add a row for each missing hour (gpus_available 0 when none are free)",
    )


def _check_grid(
    rep: _Report, grid: _Table, sites: _Table | None, window: tuple[datetime, datetime] | None
) -> None:
    if window is None or sites is None or not sites.has("zone") or not grid.has("zone", "hour_utc"):
        return
    used = sites.text["zone"].drop_nulls().unique()
    df = grid.frame("zone", "hour_utc").drop_nulls(["zone"])
    unsure = df.filter(pl.col("hour_utc").is_null()).select("zone")
    zones = (
        df.select("zone")
        .unique()
        .filter(pl.col("zone").is_in(used.implode()))
        .join(unsure, on="zone", how="anti")
        .sort("zone")
    )
    _check_complete(
        rep,
        grid,
        zones,
        window,
        lambda r: f"zone {r['zone']} (used by a site)",
        "add carbon and price rows for each missing hour of the window",
    )


def _check_bid_options(
    rep: _Report, bids: _Table, gpus: _Table | None
) -> list[dict[str, int] | None]:
    if not bids.has("gpu_options"):
        return [None] * bids.height
    known: set[str] | None = None
    gpus_file = ""
    if gpus is not None and "gpu_type" in gpus.text:
        known = set(gpus.text["gpu_type"].drop_nulls().to_list())
        gpus_file = gpus.file
    malformed: list[tuple[int, str, str]] = []
    unknown: list[tuple[int, str, str]] = []
    out: list[dict[str, int] | None] = []
    for row, text in zip(bids.raw[ROW].to_list(), bids.typed["gpu_options"].to_list(), strict=True):
        if text is None:  # already reported as empty
            out.append(None)
            continue
        options, defects = split_gpu_options(text)
        malformed += [(row, f"gpu_options '{text}': {d}", GPU_OPTIONS_FIX) for d in defects]
        if known is not None:
            unknown += [
                (
                    row,
                    f"gpu_options names unknown GPU type '{g}': not in {gpus_file}",
                    f"add '{g}' to gpus or correct the type in gpu_options",
                )
                for g in options
                if g not in known
            ]
        out.append(None if defects else options)
    rep.entries(bids.file, "gpu_options", malformed[:MAX_ROWS_REPORTED], len(malformed))
    rep.entries(bids.file, "gpu_options", unknown[:MAX_ROWS_REPORTED], len(unknown))
    return out


def _check_jurisdictions(rep: _Report, bids: _Table) -> list[str | None]:
    """``*`` or a ``;``-list of codes; returns the normal form (codes stripped) per row."""
    if not bids.has("allowed_jurisdictions"):
        return [None] * bids.height
    bad: list[tuple[int, str, str]] = []
    out: list[str | None] = []
    fix = _TEXT_FIX["allowed_jurisdictions"]
    rows = bids.raw[ROW].to_list()
    for row, text in zip(rows, bids.typed["allowed_jurisdictions"].to_list(), strict=True):
        if text is None:
            out.append(None)
            continue
        codes = [c.strip() for c in text.split(";")]
        if text == "*":
            out.append("*")
        elif any(not c for c in codes) or "*" in codes:
            bad.append(
                (
                    row,
                    f"allowed_jurisdictions '{text}' has an empty code or mixes '*' with codes",
                    fix,
                )
            )
            out.append(None)
        else:
            out.append(";".join(codes))
    rep.entries(bids.file, "allowed_jurisdictions", bad[:MAX_ROWS_REPORTED], len(bad))
    return out


def _check_bid_times(
    rep: _Report,
    bids: _Table,
    window: tuple[datetime, datetime] | None,
    options: list[dict[str, int] | None],
) -> None:
    if not bids.has("release_utc", "deadline_utc"):
        return
    shortest = [min(o.values()) if o else None for o in options]
    df = bids.frame("release_utc", "deadline_utc").with_columns(
        pl.Series("shortest", shortest, dtype=pl.Int64)
    )
    release, deadline = pl.col("release_utc"), pl.col("deadline_utc")

    def span(r: dict[str, Any]) -> str:
        return (
            f"release_utc {format_hour(r['release_utc'])}, deadline_utc "
            f"{format_hour(r['deadline_utc'])}"
        )

    ordered = deadline > release
    rep.rows(
        bids.file,
        "deadline_utc",
        df.filter(~ordered),
        lambda r: f"deadline_utc is not after release_utc ({span(r)})",
        "set deadline_utc later than release_utc (the deadline is exclusive)",
    )
    if window is None:
        return
    start, end = window
    rep.rows(
        bids.file,
        "deadline_utc",
        df.filter(ordered & (deadline > end)),
        lambda r: (
            f"deadline_utc {format_hour(r['deadline_utc'])} is after the window end "
            f"{format_hour(end)}"
        ),
        "move the deadline to window_end_utc or earlier, or widen the window in market.toml",
    )
    rep.rows(
        bids.file,
        "deadline_utc",
        df.filter(ordered & (deadline <= start)),
        lambda r: (
            f"deadline_utc {format_hour(r['deadline_utc'])} is not after the window "
            f"start {format_hour(start)}: the job cannot run in this round"
        ),
        "drop the bid or move its deadline into the window",
    )
    earliest = pl.max_horizontal(release, pl.lit(start, dtype=pl.Datetime("us", "UTC")))
    df = df.with_columns(
        ((deadline - earliest).dt.total_hours()).alias("room"), earliest.alias("earliest")
    )
    too_long = (
        ordered & (deadline > start) & (deadline <= end) & (pl.col("shortest") > pl.col("room"))
    )
    rep.rows(
        bids.file,
        "gpu_options",
        df.filter(too_long),
        lambda r: (
            f"the shortest option needs {r['shortest']} h but only {r['room']} h lie "
            f"between {format_hour(r['earliest'])} (release or window start, the later) "
            f"and deadline_utc {format_hour(r['deadline_utc'])}"
        ),
        "move the deadline later, the release earlier, or offer a faster GPU option",
    )


def _warn_jurisdictions(
    rep: _Report, bids: _Table, sites: _Table | None, jurisdictions: list[str | None]
) -> None:
    if sites is None or "jurisdiction" not in sites.text or "bid_id" not in bids.text:
        return
    present = set(sites.text["jurisdiction"].drop_nulls().to_list())
    stranded = [
        bid
        for bid, allowed in zip(bids.text["bid_id"].to_list(), jurisdictions, strict=True)
        if allowed is not None and allowed != "*" and not present & set(allowed.split(";"))
    ]
    if stranded:
        shown = ", ".join(str(b) for b in stranded[:MAX_ROWS_REPORTED])
        more = (
            f" and {len(stranded) - MAX_ROWS_REPORTED} more"
            if len(stranded) > MAX_ROWS_REPORTED
            else ""
        )
        rep.warnings.append(
            f"{bids.file}: bid(s) {shown}{more} allow no jurisdiction where the bundle has a "
            "site; they can never be placed"
        )


# --------------------------------------------------------------------------------------------
# Assembly


def _final_frame(t: _Table, replace: Mapping[str, pl.Series] | None = None) -> pl.DataFrame:
    """Required columns typed (SCHEMAS order), then extra columns verbatim, sorted by key."""
    typed = dict(t.typed)
    typed.update(replace or {})
    extras = [c for c in t.raw.columns if c != ROW and c not in typed]
    # An empty extra cell is a missing value, as in required columns: CSV cannot tell '' from
    # null, so this is what makes CSV and Parquet bundles read back alike.
    frame = pl.DataFrame(
        [typed[c] for c in SCHEMAS[t.name]] + [t.raw[c].replace("", None) for c in extras]
    )
    frame = frame.cast({c: d for c, d in SCHEMAS[t.name].items()})
    return frame.sort(list(KEYS[t.name]), maintain_order=True)


def _in_window(
    rep: _Report, frame: pl.DataFrame, file: str, window: tuple[datetime, datetime]
) -> pl.DataFrame:
    inside = frame.filter((pl.col("hour_utc") >= window[0]) & (pl.col("hour_utc") < window[1]))
    dropped = frame.height - inside.height
    if dropped:
        rep.warnings.append(
            f"{file}: {dropped} row(s) outside the window [{format_hour(window[0])}, "
            f"{format_hour(window[1])}) were ignored"
        )
    return inside


def _assemble(
    rep: _Report,
    config: MarketConfig,
    t: Mapping[str, _Table],
    options: list[dict[str, int] | None],
    jurisdictions: list[str | None],
) -> Market:
    bids_t = t["bids"]
    window = (config.window_start_utc, config.window_end_utc)
    normal_options = [format_gpu_options(o) if o else None for o in options]
    bids = _final_frame(
        bids_t,
        {
            "gpu_options": pl.Series("gpu_options", normal_options, dtype=pl.String),
            "allowed_jurisdictions": pl.Series(
                "allowed_jurisdictions", jurisdictions, dtype=pl.String
            ),
        },
    )
    capacity = _in_window(rep, _final_frame(t["capacity"]), t["capacity"].file, window)
    grid = _in_window(rep, _final_frame(t["grid"]), t["grid"].file, window)
    if bids.is_empty():
        rep.warnings.append(
            f"{bids_t.file} has no bids: the bundle is valid but the round will place nothing"
        )
    if capacity.is_empty():
        rep.warnings.append(
            f"{t['capacity'].file} has no rows in the window: every bid will be rejected"
        )
    return Market(
        config=config,
        members=_final_frame(t["members"]),
        gpus=_final_frame(t["gpus"]),
        sites=_final_frame(t["sites"]),
        capacity=capacity,
        grid=grid,
        bids=bids,
        bid_options=bid_options_table(bids),
    )


_FILE_ORDER = {"market": 0} | {name: i for i, name in enumerate(TABLES, start=1)}


def order_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Group problems by file (market.toml, then the tables in TABLES order), keeping the
    order found within a file; problems about the bundle folder itself come first."""
    return sorted(problems, key=lambda p: _FILE_ORDER.get(p.file.split(".", 1)[0], -1))


def check_bundle(
    tables: Mapping[str, pl.DataFrame | None],
    config: Mapping[str, object] | None,
    *,
    files: Mapping[str, str] | None = None,
) -> BundleCheck:
    """Validate raw tables and the parsed ``market.toml``; never raises for bad data.

    ``tables`` maps each of :data:`optim.market.TABLES` to its frame (any dtypes; non-String
    columns are rendered with :func:`frame_as_strings`). A value of ``None`` means the caller
    could not read that table and has reported why: checks needing it are skipped. A missing
    key is reported as a missing table. ``config=None`` likewise means market.toml was
    unreadable. ``files`` maps a table to the file name used in messages (default
    ``<table>.csv``).
    """
    rep = _Report()
    names = {name: (files or {}).get(name, f"{name}.csv") for name in TABLES}
    window: tuple[datetime, datetime] | None = None
    market_config: MarketConfig | None = None
    if config is not None:
        window, market_config = _check_config(rep, config)

    parsed: dict[str, _Table] = {}
    for name in TABLES:
        if name not in tables:
            rep.add(
                names[name],
                None,
                None,
                f"table {name} is missing",
                f"provide {name}.csv or {name}.parquet",
            )
            continue
        raw = tables[name]
        if raw is None:
            continue
        parsed[name] = _parse_table(rep, name, names[name], raw)

    get = parsed.get
    for name in ("members", "gpus", "sites"):
        if name in parsed:
            _check_not_empty(rep, parsed[name])
    for table in parsed.values():
        _check_unique(rep, table)
    if "gpus" in parsed:
        _check_pattern(
            rep,
            parsed["gpus"],
            "gpu_type",
            pl.col("gpu_type").str.contains(r"[:;]"),
            "contains ':' or ';'",
            "rename the GPU type without ':' or ';' (they separate gpu_options)",
        )
    if "sites" in parsed:
        _check_sites(rep, parsed["sites"], get("members"), get("grid"))
    if "capacity" in parsed:
        _check_capacity(rep, parsed["capacity"], get("sites"), get("gpus"), window)
    if "grid" in parsed:
        _check_grid(rep, parsed["grid"], get("sites"), window)
    options: list[dict[str, int] | None] = []
    jurisdictions: list[str | None] = []
    if "bids" in parsed:
        bids = parsed["bids"]
        _check_reference(rep, bids, "member", get("members"), "member", "member")
        options = _check_bid_options(rep, bids, get("gpus"))
        jurisdictions = _check_jurisdictions(rep, bids)
        _check_bid_times(rep, bids, window, options)
        _warn_jurisdictions(rep, bids, get("sites"), jurisdictions)

    problems = order_problems(rep.problems)
    complete = market_config is not None and all(
        name in parsed and parsed[name].has(*SCHEMAS[name]) for name in TABLES
    )
    if problems or not complete:
        return BundleCheck(None, problems, rep.warnings)
    assert market_config is not None  # narrowed by `complete`
    market = _assemble(rep, market_config, parsed, options, jurisdictions)
    return BundleCheck(market, [], rep.warnings)


def validate_bundle(
    tables: Mapping[str, pl.DataFrame | None],
    config: Mapping[str, object] | None,
    *,
    files: Mapping[str, str] | None = None,
    bundle: str = "<bundle>",
) -> tuple[Market, list[str]]:
    """Validate a bundle's tables and config: ``(Market, warnings)`` or :class:`BundleError`.

    See :func:`check_bundle` for the arguments and the module docstring for the rules. The
    error lists every problem found; warnings are plain sentences (empty bid list, rows
    outside the window that were ignored, bids no site can host).
    """
    result = check_bundle(tables, config, files=files)
    if result.market is None:
        problems = result.problems or [
            Problem(
                CONFIG_FILE,
                None,
                None,
                "market.toml could not be read",
                "fix market.toml; see the other messages",
            )
        ]
        raise BundleError(bundle, problems)
    return result.market, result.warnings

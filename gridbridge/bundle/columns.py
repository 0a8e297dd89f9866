"""Typed columns of a bundle table: raw string cells parsed, each bad cell a :class:`Problem`.

A table arrives as a frame of strings (CSV cells as read, Parquet values rendered by
:func:`frame_as_strings`); :func:`parse_table` checks that the required columns are present
and parses every required cell by its dtype: text (stripped, empty is missing), numbers
(finite, in the column's :class:`Range`, whole where the range says so) and UTC hour stamps.
Each bad cell is reported once with its 1-based row through a :class:`Report`, which lists
at most :data:`~gridbridge.errors.MAX_ROWS_REPORTED` rows per (file, field, kind) and then
a count. The parsed columns are null where a cell was bad, so later checks skip it rather
than report a cascade. The rules themselves are listed in :mod:`gridbridge.bundle.validate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from gridbridge.bundle.options import GPU_OPTIONS_FIX
from gridbridge.errors import MAX_ROWS_REPORTED, Problem
from gridbridge.hours import HOUR_FORMAT, parse_hour_column
from gridbridge.limits import (
    ASK_EUR_PER_GPU_HOUR,
    BID_VALUE_EUR,
    CARBON_G_PER_KWH,
    PRICE_EUR_PER_MWH,
    TARIFF_ADDER_EUR_PER_MWH,
    Limit,
    format_bound,
)
from optim.market import SCHEMAS

__all__ = [
    "NUMBERS",
    "ROW",
    "TEXT_FIX",
    "Range",
    "Report",
    "Table",
    "frame_as_strings",
    "number_column",
    "parse_table",
    "text_column",
    "time_column",
]

#: Internal 1-based row number column; the odd name cannot clash with a user's column.
ROW = "__gridbridge_row__"
# Beyond 2**53 a float no longer holds every integer, so "1e300" is not an exact GPU count.
_MAX_EXACT_INT = 2.0**53


@dataclass(frozen=True, slots=True)
class Range:
    """The legal range of a numeric column; ``None`` bounds are open-ended."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    integer: bool = False
    unit: str = ""

    @classmethod
    def of(cls, limit: Limit) -> Range:
        """The closed range of one of :mod:`gridbridge.limits`' sane bounds."""
        return cls(limit.low, high=limit.high, unit=limit.unit)

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"between {format_bound(self.low)} and {format_bound(self.high)}{unit}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {format_bound(self.low)}{unit}"
        return "finite"



#: Numeric required columns: their range and the fix that says what to write.
NUMBERS: dict[tuple[str, str], tuple[Range, str]] = {
    ("members", "pledge_share"): (
        Range(0, high=1),
        "write the member's pledged share as a fraction from 0 to 1, e.g. 0.2",
    ),
    ("gpus", "it_kw"): (
        Range(0, low_open=True),
        "write the IT power per GPU in kW including its share of the node, e.g. 1.275",
    ),
    ("gpus", "board_kw"): (
        Range(0, low_open=True),
        "write the GPU board power in kW, e.g. 0.7",
    ),
    ("sites", "lat"): (Range(-90, high=90), "write the latitude in decimal degrees, -90..90"),
    ("sites", "lon"): (Range(-180, high=180), "write the longitude in decimal degrees, -180..180"),
    ("sites", "pue"): (
        Range(1),
        "write the site's PUE (facility energy / IT energy), at least 1.0, e.g. 1.3",
    ),
    ("sites", "tariff_adder_eur_per_mwh"): (
        Range.of(TARIFF_ADDER_EUR_PER_MWH),
        "write the tariff adder in EUR/MWh (not per kWh; negative is allowed)",
    ),
    ("capacity", "gpus_available"): (
        Range(0, integer=True),
        "write the number of free GPUs as a whole number, 0 or more",
    ),
    ("capacity", "ask_eur_per_gpu_hour"): (
        Range.of(ASK_EUR_PER_GPU_HOUR),
        "write the site's ask in EUR per GPU-hour (not per node, not in cents), e.g. 1.25",
    ),
    ("grid", "carbon_direct_g_per_kwh"): (
        Range.of(CARBON_G_PER_KWH),
        "write the direct carbon intensity in gCO2eq/kWh (not per MWh), e.g. 420",
    ),
    ("grid", "carbon_lifecycle_g_per_kwh"): (
        Range.of(CARBON_G_PER_KWH),
        "write the lifecycle carbon intensity in gCO2eq/kWh (not per MWh), e.g. 480",
    ),
    ("grid", "price_eur_per_mwh"): (
        Range.of(PRICE_EUR_PER_MWH),
        "write the zone's wholesale price in EUR/MWh (not per kWh, not in local currency; "
        "negative prices are allowed)",
    ),
    ("bids", "gpus"): (
        Range(0, low_open=True, integer=True),
        "write how many GPUs the job needs as a whole number, 1 or more",
    ),
    ("bids", "value_eur"): (
        Range.of(BID_VALUE_EUR),
        "write the most the member will pay for the whole job in EUR, e.g. 25000",
    ),
}

#: Fixes for missing text cells, by column.
TEXT_FIX: dict[str, str] = {
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


class Report:
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
class Table:
    """One table while it is checked: raw strings and the parsed required columns."""

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


def text_column(rep: Report, t: Table, column: str, *, required: bool = True) -> pl.Series:
    """The column's stripped text, empty cells null; each empty cell is reported when
    ``required``."""
    values = t.raw[column].str.strip_chars().replace("", None)
    if not required:
        return values
    hits = pl.DataFrame([t.raw[ROW], values]).filter(pl.col(column).is_null())
    fix = TEXT_FIX.get(column, f"fill in {column}")
    rep.rows(t.file, column, hits, lambda _r: f"{column} is empty", fix)
    return values


def number_column(
    rep: Report, t: Table, column: str, text: pl.Series, spec: Range, fix: str
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


def time_column(rep: Report, t: Table, column: str, text: pl.Series) -> pl.Series:
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


def parse_table(
    rep: Report,
    name: str,
    file: str,
    raw: pl.DataFrame,
    *,
    schema: Mapping[str, pl.DataType] | None = None,
    numbers: Mapping[tuple[str, str], tuple[Range, str]] = NUMBERS,
    may_be_empty: Iterable[str] = (),
) -> Table:
    """Check a table's columns and parse every required cell.

    ``schema`` names the required columns and their dtypes (default: the bundle table's
    :data:`optim.market.SCHEMAS` entry); ``numbers`` gives each numeric one, keyed by
    ``(name, column)``, its range and fix. Missing required columns are named all at once;
    checks that need them are skipped, while the columns that are present are still checked
    and still serve as reference targets. Columns named in ``may_be_empty`` must be present,
    but their empty cells are missing values rather than problems (the parsed value is null);
    cells that are filled in are checked as usual.
    """
    optional = set(may_be_empty)
    raw, unreadable = frame_as_strings(raw)
    for column, reason in unreadable:
        rep.add(
            file,
            None,
            column,
            f"column '{column}' {reason}",
            "store the column as text or plain numbers",
        )
    schema = SCHEMAS[name] if schema is None else schema
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
    t = Table(name, file, raw, {}, {})
    for column, dtype in schema.items():
        if column not in raw.columns:
            continue
        text = text_column(rep, t, column, required=column not in optional)
        t.text[column] = text
        if dtype == pl.String:
            t.typed[column] = text
        elif isinstance(dtype, pl.Datetime):
            t.typed[column] = time_column(rep, t, column, text)
        else:
            spec, fix = numbers[(name, column)]
            t.typed[column] = number_column(rep, t, column, text, spec, fix)
    return t


"""Table-level and cross-table rules of a market bundle, on tables parsed by
:mod:`gridbridge.bundle.columns`: unique keys, patterns, references between tables, complete
windows, and the bids' options, jurisdictions and times.

Each rule reports through a :class:`~gridbridge.bundle.columns.Report` and skips what it
cannot judge (a missing column or table, a cell already reported as bad), so one defect gives
one problem. The rules are listed in :mod:`gridbridge.bundle.validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl

from gridbridge.bundle.columns import ROW, TEXT_FIX, Report, Table
from gridbridge.bundle.options import GPU_OPTIONS_FIX, split_gpu_options
from gridbridge.errors import MAX_ROWS_REPORTED
from gridbridge.hours import format_hour

__all__ = [
    "KEYS",
    "check_bid_options",
    "check_bid_times",
    "check_capacity",
    "check_grid",
    "check_jurisdictions",
    "check_not_empty",
    "check_pattern",
    "check_reference",
    "check_sites",
    "check_unique",
    "warn_jurisdictions",
]

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


def _show(value: object) -> str:
    return format_hour(value) if isinstance(value, datetime) else str(value)


def check_unique(rep: Report, t: Table) -> None:
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


def check_pattern(
    rep: Report, t: Table, column: str, bad: pl.Expr, message: str, fix: str
) -> None:
    if not t.has(column):
        return
    hits = t.frame(column).filter(pl.col(column).is_not_null() & bad)
    rep.rows(t.file, column, hits, lambda r: f"{column} '{r[column]}' {message}", fix)


def check_reference(
    rep: Report, t: Table, column: str, target: Table | None, target_column: str, noun: str
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


def check_not_empty(rep: Report, t: Table) -> None:
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
    rep: Report,
    t: Table,
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
# Per-table rules


def check_sites(rep: Report, sites: Table, members: Table | None, grid: Table | None) -> None:
    check_pattern(
        rep,
        sites,
        "site_id",
        ~pl.col("site_id").str.contains(SLUG_PATTERN),
        "is not a URL-safe slug",
        "use only letters, digits, '-', '_' and '.', e.g. KR-SUWON-1",
    )
    check_pattern(
        rep,
        sites,
        "jurisdiction",
        pl.col("jurisdiction").str.contains(";", literal=True) | (pl.col("jurisdiction") == "*"),
        "is not a single jurisdiction code",
        "write one code such as KR (no ';' or '*')",
    )
    check_reference(rep, sites, "member", members, "member", "member")
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


def check_capacity(
    rep: Report,
    capacity: Table,
    sites: Table | None,
    gpus: Table | None,
    window: tuple[datetime, datetime] | None,
) -> None:
    check_reference(rep, capacity, "site_id", sites, "site_id", "site")
    check_reference(rep, capacity, "gpu_type", gpus, "gpu_type", "GPU type")
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


def check_grid(
    rep: Report, grid: Table, sites: Table | None, window: tuple[datetime, datetime] | None
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


def check_bid_options(
    rep: Report, bids: Table, gpus: Table | None
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


def check_jurisdictions(rep: Report, bids: Table) -> list[str | None]:
    """``*`` or a ``;``-list of codes; returns the normal form (codes stripped) per row."""
    if not bids.has("allowed_jurisdictions"):
        return [None] * bids.height
    bad: list[tuple[int, str, str]] = []
    out: list[str | None] = []
    fix = TEXT_FIX["allowed_jurisdictions"]
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


def check_bid_times(
    rep: Report,
    bids: Table,
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


def warn_jurisdictions(
    rep: Report, bids: Table, sites: Table | None, jurisdictions: list[str | None]
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


"""Strict validation of a market bundle: raw string tables + ``market.toml`` -> :class:`Market`.

Pure: no files. The reader hands over every table as a frame of strings (CSV cells as read,
Parquet values rendered by :func:`frame_as_strings`), so CSV and Parquet bundles go through
the same rules and get the same messages. Every finding is a :class:`Problem` naming the file,
the 1-based data row (header not counted), the field, what is wrong and the fix. All findings
are collected in one pass; a check that depends on a missing column or an unreadable table is
skipped rather than reported as a cascade of follow-on errors. Per (file, field, kind) at most
:data:`MAX_ROWS_REPORTED` rows are listed, then one "... and N more rows" line.

The work is split by job: :mod:`gridbridge.bundle.config` checks ``market.toml``,
:mod:`gridbridge.bundle.columns` parses each table's typed columns cell by cell,
:mod:`gridbridge.bundle.rules` applies the table-level and cross-table rules, and this module
runs them in order and assembles the :class:`Market`.

Rules and decisions (units as in DESIGN.md: UTC hour-beginning stamps, half-open intervals):

* Text cells are stripped of surrounding spaces; an empty cell is a missing value. Extra
  columns are kept verbatim as strings.
* The grid's intensity column of the signal ``market.toml`` does not choose may be left
  empty (the column itself must be there): the core reads only the chosen signal's column
  (``carbon_<signal>_g_per_kwh``), and a source that reports one signal, such as the
  exchange's telemetry, has nothing to put in the other. The chosen signal's column must be
  filled in for every row; filled cells of the other column are checked as usual. When
  ``carbon_signal`` is missing or invalid both columns are required.
* Numbers must be finite (no NaN/inf). GPU counts (``capacity.gpus_available`` >= 0,
  ``bids.gpus`` >= 1) are whole numbers; an exact integer written with a zero fraction
  (``8.0``, as spreadsheets and float Parquet columns produce) is accepted, ``8.5`` is not.
  Prices (``price_eur_per_mwh``, ``tariff_adder_eur_per_mwh``) may be negative; intensities,
  asks and bid values may not. ``pue`` >= 1, ``pledge_share`` in [0, 1], ``it_kw`` and
  ``board_kw`` > 0, ``lat`` in [-90, 90], ``lon`` in [-180, 180].
* Numbers from outside lie within the sane bounds of :mod:`gridbridge.limits`, which the
  exchange's contract shares: ``price_eur_per_mwh`` in [-10000, 10000] EUR/MWh, intensities
  in [0, 2000] gCO2eq/kWh, ``ask_eur_per_gpu_hour`` in [0, 1000], ``value_eur`` in [0, 1e9]
  EUR and ``carbon_price_eur_per_t`` in [0, 100000].
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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from gridbridge.bundle.columns import ROW, Report, Table, frame_as_strings, parse_table
from gridbridge.bundle.config import CONFIG_FILE, check_config
from gridbridge.bundle.options import bid_options_table, format_gpu_options
from gridbridge.bundle.rules import (
    KEYS,
    check_bid_options,
    check_bid_times,
    check_capacity,
    check_grid,
    check_jurisdictions,
    check_not_empty,
    check_pattern,
    check_reference,
    check_sites,
    check_unique,
    warn_jurisdictions,
)
from gridbridge.errors import MAX_ROWS_REPORTED, BundleError, Problem
from gridbridge.hours import format_hour
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


@dataclass(frozen=True, slots=True)
class BundleCheck:
    """The outcome of :func:`check_bundle`: a Market only when ``problems`` is empty."""

    market: Market | None
    problems: list[Problem]
    warnings: list[str]


# --------------------------------------------------------------------------------------------
# Assembly


def _final_frame(t: Table, replace: Mapping[str, pl.Series] | None = None) -> pl.DataFrame:
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
    rep: Report, frame: pl.DataFrame, file: str, window: tuple[datetime, datetime]
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
    rep: Report,
    config: MarketConfig,
    t: Mapping[str, Table],
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


def _unused_signal_column(config: Mapping[str, object] | None) -> tuple[str, ...]:
    """The grid column that may be empty: that of the signal ``config`` does not choose."""
    chosen = (config or {}).get("carbon_signal")
    if chosen not in CARBON_SIGNALS:
        return ()
    return tuple(f"carbon_{s}_g_per_kwh" for s in CARBON_SIGNALS if s != chosen)


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
    rep = Report()
    names = {name: (files or {}).get(name, f"{name}.csv") for name in TABLES}
    window: tuple[datetime, datetime] | None = None
    market_config: MarketConfig | None = None
    if config is not None:
        window, market_config = check_config(rep, config)

    parsed: dict[str, Table] = {}
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
        optional = _unused_signal_column(config) if name == "grid" else ()
        parsed[name] = parse_table(rep, name, names[name], raw, may_be_empty=optional)

    get = parsed.get
    for name in ("members", "gpus", "sites"):
        if name in parsed:
            check_not_empty(rep, parsed[name])
    for table in parsed.values():
        check_unique(rep, table)
    if "gpus" in parsed:
        check_pattern(
            rep,
            parsed["gpus"],
            "gpu_type",
            pl.col("gpu_type").str.contains(r"[:;]"),
            "contains ':' or ';'",
            "rename the GPU type without ':' or ';' (they separate gpu_options)",
        )
    if "sites" in parsed:
        check_sites(rep, parsed["sites"], get("members"), get("grid"))
    if "capacity" in parsed:
        check_capacity(rep, parsed["capacity"], get("sites"), get("gpus"), window)
    if "grid" in parsed:
        check_grid(rep, parsed["grid"], get("sites"), window)
    options: list[dict[str, int] | None] = []
    jurisdictions: list[str | None] = []
    if "bids" in parsed:
        bids = parsed["bids"]
        check_reference(rep, bids, "member", get("members"), "member", "member")
        options = check_bid_options(rep, bids, get("gpus"))
        jurisdictions = check_jurisdictions(rep, bids)
        check_bid_times(rep, bids, window, options)
        warn_jurisdictions(rep, bids, get("sites"), jurisdictions)

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

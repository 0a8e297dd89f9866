"""Write a :class:`Market` as a bundle folder: ``market.toml`` plus six CSV or Parquet tables.

Output is deterministic: the same Market gives byte-identical files, so bundles can be
diffed and checked in. To get there:

* rows are sorted by each table's key (``members.member``, ``gpus.gpu_type``,
  ``sites.site_id``, ``capacity`` (site_id, gpu_type, hour_utc), ``grid`` (zone, hour_utc),
  ``bids.bid_id``); required columns come first in SCHEMAS order, extra columns after them in
  the Market's order;
* ``bids.gpu_options`` is written from ``Market.bid_options`` (what the core actually uses),
  each bid's options in their order there;
* CSV times are ``2023-07-03T14:00Z`` (UTC, hour-beginning; written by
  :func:`gridbridge.tables.write_csv` like every GridBridge CSV table); floats use polars'
  shortest round-trip form (``0.1``, ``1.275``, ``1e-07``), so re-reading gives exactly the
  same values, not merely within a tolerance; missing values are empty cells;
* Parquet keeps the typed columns (times as ``Datetime("us", "UTC")``), zstd-compressed;
* ``market.toml`` is plain TOML generated here: the window as quoted strings in the same time
  format, the carbon price and solver limits as floats, extra keys sorted by name.

Each file is written to a temporary name and then renamed
(:func:`gridbridge.tables.replace_file`), so a crash never leaves a truncated table. A table
file of the other format (``bids.parquet`` when writing CSV) is removed, because a bundle
with both is ambiguous and would not read back. Other files in the folder (e.g. a previous
clearing's results) are left alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

import polars as pl

from gridbridge.bundle.validate import CONFIG_FILE, KEYS
from gridbridge.errors import InputError
from gridbridge.hours import format_hour
from gridbridge.tables import replace_file, write_csv
from optim.market import SCHEMAS, TABLES, Market, MarketConfig

__all__ = ["BundleFormat", "config_toml", "write_bundle"]

BundleFormat = Literal["csv", "parquet"]
_FORMATS: tuple[str, ...] = ("csv", "parquet")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------------------------
# market.toml


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            # TOML forbids raw control characters in basic strings.
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: object, where: str) -> str:
    """One TOML value; nested tables are written inline so key order stays simple."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest round-trip form; always has '.' or 'e'
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        inner = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v, where)}" for k, v in items)
        return "{" + inner + "}"
    raise InputError(
        f"market.toml key '{where}' holds {type(value).__name__}, which TOML cannot store; "
        "fix: keep MarketConfig.extra to strings, numbers, booleans, dates, lists and tables"
    )


def config_toml(config: MarketConfig) -> str:
    """The text of ``market.toml`` for ``config`` (readable by :mod:`tomllib`)."""
    lines = [
        "# GridBridge market bundle: the round's window (UTC hour-beginning stamps; the end is",
        "# exclusive), carbon price in EUR per tonne CO2eq on the chosen signal, solver limits.",
        f'window_start_utc = "{format_hour(config.window_start_utc)}"',
        f'window_end_utc = "{format_hour(config.window_end_utc)}"',
        f"carbon_price_eur_per_t = {_toml_value(float(config.carbon_price_eur_per_t), 'c')}",
        f"carbon_signal = {_toml_string(config.carbon_signal)}",
    ]
    if config.time_limit_s is not None:
        lines.append(f"time_limit_s = {_toml_value(float(config.time_limit_s), 't')}")
    if config.mip_rel_gap is not None:
        lines.append(f"mip_rel_gap = {_toml_value(float(config.mip_rel_gap), 'm')}")
    for key in sorted(config.extra):
        lines.append(f"{_toml_key(key)} = {_toml_value(config.extra[key], key)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Tables


def _bids_with_options(market: Market) -> pl.DataFrame:
    """``bids`` with ``gpu_options`` rebuilt from ``bid_options`` (kept where a bid has none)."""
    options = market.bid_options.group_by("bid_id", maintain_order=True).agg(
        (pl.col("gpu_type") + ":" + pl.col("duration_h").cast(pl.String))
        .str.join(";")
        .alias("__options")
    )
    return (
        market.bids.join(options, on="bid_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("__options", "gpu_options").alias("gpu_options"))
        .drop("__options")
    )


def canonical_tables(market: Market) -> dict[str, pl.DataFrame]:
    """The six file tables as written: required columns first, rows sorted by key."""
    frames = {name: market.table(name) for name in TABLES}
    frames["bids"] = _bids_with_options(market)
    out: dict[str, pl.DataFrame] = {}
    for name, frame in frames.items():
        required = list(SCHEMAS[name])
        extras = [c for c in frame.columns if c not in SCHEMAS[name]]
        out[name] = frame.select(required + extras).sort(list(KEYS[name]), maintain_order=True)
    return out


def write_bundle(market: Market, folder: str | Path, *, fmt: str = "csv") -> Path:
    """Write ``market`` into ``folder`` (created if needed) as ``fmt`` (``csv``|``parquet``).

    Returns the folder. ``read_bundle`` on the result gives a Market equal to ``market`` when
    ``market`` came from ``read_bundle`` (in general: equal up to row order and with extra
    columns as strings). Raises :class:`InputError` for an unknown format or a config extra
    that TOML cannot hold.
    """
    if fmt not in _FORMATS:
        raise InputError(f"unknown bundle format '{fmt}'; fix: use csv or parquet")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    toml_text = config_toml(market.config)
    tables = canonical_tables(market)
    other = next(f for f in _FORMATS if f != fmt)
    for name in TABLES:
        (out / f"{name}.{other}").unlink(missing_ok=True)
    replace_file(
        out / CONFIG_FILE, lambda p: p.write_text(toml_text, encoding="utf-8", newline="\n")
    )
    for name, frame in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            write_csv(frame, path)
        else:
            replace_file(
                path,
                lambda p, f=frame: f.write_parquet(p, compression="zstd", statistics=True),
            )
    return out

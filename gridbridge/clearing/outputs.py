"""The clearing's files (DESIGN.md, "A clearing writes beside it").

* ``placements.csv`` — one row per accepted bid: DESIGN.md's columns plus ``member``,
  ``ask_eur``, ``carbon_fee_eur``, ``capacity_eur``, ``value_eur`` and ``uplift_eur``
  (:mod:`optim.pricing`). Money is written to 1/10,000 EUR and kWh/kg to 1/1,000,000: exact
  enough for any sum of cents and stable from run to run.
* ``rejected.csv`` — ``bid_id``, ``reason`` (a code: no_site, no_window, below_cost,
  emissions_cap, not_selected, outbid), ``detail``, ``lost_opportunity_eur`` (> 0: rejected
  paradoxically).
* ``prices.csv`` — ``site_id``, ``gpu_type``, ``hour_utc``,
  ``capacity_price_eur_per_gpu_hour`` (to 1/1,000,000 EUR).
* ``ledger.csv`` — the round's postings (:mod:`gridbridge.settlement`), when it was priced.
* ``summary.json`` — deterministic figures (no wall-clock time), with the ``round_id`` and
  the ``bundle`` it was cleared from (relative to this folder).
* ``timings.json`` — wall seconds per phase.

Every file is written atomically (temporary sibling, then rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from gridbridge.errors import InputError
from gridbridge.hours import parse_hour_column
from gridbridge.tables import replace_file, write_csv
from optim.clearing import PLACEMENT_SCHEMA, PRICE_SCHEMA, Clearing

MONEY = ("energy_cost_eur", "ask_eur", "carbon_fee_eur", "capacity_eur", "value_eur",
         "payment_eur", "uplift_eur")
PHYSICAL = ("energy_kwh", "emissions_kg")
FILES = ("placements.csv", "rejected.csv", "prices.csv", "summary.json", "timings.json")


@dataclass(frozen=True, slots=True)
class ClearingFiles:
    """A clearing read back from its folder."""

    placements: pl.DataFrame
    rejected: pl.DataFrame
    prices: pl.DataFrame
    summary: dict[str, object]


def _json(path: Path, data: object) -> None:
    replace_file(path, lambda tmp: tmp.write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)))


def write_clearing(clearing: Clearing, out: Path, *, bundle: Path | None = None,
                   round_id: str | None = None,
                   ledger: pl.DataFrame | None = None) -> list[Path]:
    """Write the files of ``clearing`` into ``out`` (created); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / name for name in FILES]
    if ledger is not None:
        write_csv(ledger, out / "ledger.csv")
        files.append(out / "ledger.csv")
    placements = clearing.placements.with_columns(
        *(pl.col(c).round(4) for c in MONEY), *(pl.col(c).round(6) for c in PHYSICAL))
    write_csv(placements, out / "placements.csv")
    write_csv(clearing.rejected.with_columns(pl.col("lost_opportunity_eur").round(4)),
              out / "rejected.csv")
    write_csv(clearing.prices.with_columns(pl.col("capacity_price_eur_per_gpu_hour").round(6)),
              out / "prices.csv")
    summary: dict[str, object] = {"round_id": round_id}
    if bundle is not None:
        summary["bundle"] = os.path.relpath(bundle.resolve(), out.resolve())
    _json(out / "summary.json", {**summary, **clearing.summary()})
    _json(out / "timings.json", clearing.timings())
    return files


def write_frontier(frame: pl.DataFrame, out: Path) -> Path:
    """Write the trade-off curve as ``out/frontier.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(frame, out / "frontier.csv")
    return out / "frontier.csv"


def _read_csv(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if not path.is_file():
        raise InputError(f"{path} is missing; run gridbridge clear BUNDLE --out {path.parent}")
    text_schema = {c: (pl.String if t == pl.Datetime("us", "UTC") else t)
                   for c, t in schema.items()}
    try:
        frame = pl.read_csv(path, schema_overrides=text_schema)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path} is not a readable CSV ({exc}); re-run gridbridge clear") from None
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; re-run gridbridge clear")
    for column, dtype in schema.items():
        if dtype == pl.Datetime("us", "UTC"):
            parsed, errors = parse_hour_column(frame[column])
            if errors:
                row, err = next(iter(errors.items()))
                raise InputError(f"{path} row {row + 1}, {column}: {err}; {err.fix}")
            frame = frame.with_columns(parsed.alias(column))
    return frame


def read_clearing(out: Path) -> ClearingFiles:
    """Read placements.csv, rejected.csv, prices.csv and summary.json from ``out``."""
    placements = _read_csv(out / "placements.csv", dict(PLACEMENT_SCHEMA))
    rejected = _read_csv(out / "rejected.csv", {"bid_id": pl.String, "reason": pl.String,
                                                "lost_opportunity_eur": pl.Float64})
    prices = _read_csv(out / "prices.csv", dict(PRICE_SCHEMA))
    path = out / "summary.json"
    if not path.is_file():
        raise InputError(f"{path} is missing; run gridbridge clear BUNDLE --out {out}")
    try:
        summary = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); re-run gridbridge clear") from None
    if not isinstance(summary, dict):
        raise InputError(f"{path} must hold a JSON object; re-run gridbridge clear")
    return ClearingFiles(placements=placements, rejected=rejected, prices=prices,
                         summary=summary)

"""Read Electricity Maps' hourly carbon-intensity exports (their free-dataset CSV format).

Input columns (others are ignored): ``Datetime (UTC)`` (UTC, hour-beginning, e.g.
``2023-01-01 00:00:00``), ``Zone Id``, ``Carbon Intensity gCO₂eq/kWh (direct)``,
``Carbon Intensity gCO₂eq/kWh (LCA)`` and ``Data Estimated`` (true/false). Header names
match with the Unicode subscript ``₂`` or a plain ``2``, ignoring case and spacing.

Output: ``zone``, ``hour_utc``, ``carbon_direct_g_per_kwh`` (operational, gCO2eq/kWh),
``carbon_lifecycle_g_per_kwh`` (life-cycle, gCO2eq/kWh), ``estimated``. Intensities are
location-based averages, never negative and at most 2,000 gCO2eq/kWh (the sane bound of
:data:`gridbridge.limits.CARBON_G_PER_KWH`).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from gridbridge.hours import format_hour
from gridbridge.importers import (
    ImportResult,
    check_limit,
    complete_year,
    hour_runs,
    import_error,
    parse_number_column,
    parse_stamp_column,
    read_text_csv,
)
from gridbridge.limits import CARBON_G_PER_KWH

__all__ = ["read_electricitymaps_csv"]

TIME = "Datetime (UTC)"
ZONE = "Zone Id"
DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
ESTIMATED = "Data Estimated"
VALUE_COLUMNS = ["carbon_direct_g_per_kwh", "carbon_lifecycle_g_per_kwh"]
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _key(name: str) -> str:
    """Spelling-insensitive header key: ``₂`` -> ``2``, case and runs of spaces ignored."""
    return re.sub(r"\s+", " ", name.replace("₂", "2")).strip().casefold()


def _find_columns(header: list[str], source: Path, need_zone: bool) -> dict[str, str]:
    """Map each canonical column name to the file's spelling; error listing what is missing."""
    by_key = {_key(name): name for name in header}
    wanted = [TIME, DIRECT, LCA, ESTIMATED] + ([ZONE] if need_zone else [])
    found = {name: by_key[_key(name)] for name in wanted if _key(name) in by_key}
    if ZONE not in found and _key(ZONE) in by_key:
        found[ZONE] = by_key[_key(ZONE)]
    missing = [name for name in wanted if name not in found]
    if missing:
        raise import_error(
            source,
            f"missing column(s) {', '.join(repr(m) for m in missing)}; expected "
            f"{', '.join(repr(w) for w in wanted)} (CO₂ may be spelled CO2)",
            "export the hourly CSV from Electricity Maps unchanged"
            + ("" if not need_zone else ", or pass the zone explicitly (--zone)"),
        )
    return found


def read_electricitymaps_csv(
    path: str | Path, zone: str | None = None, year: int | None = None
) -> ImportResult:
    """Import one zone's hourly carbon intensity from an Electricity Maps CSV.

    ``zone`` defaults to the file's single ``Zone Id`` (given, it relabels the zone). With
    ``year``, only that UTC year's hours are kept and every missing hour is filled from
    the nearest hour and flagged estimated; without it, the rows are only checked and
    sorted. Raises :class:`~gridbridge.errors.DataImportError` naming file, row and column.
    """
    source = Path(path)
    raw = read_text_csv(source)
    cols = _find_columns(raw.columns, source, need_zone=zone is None)
    if raw.height == 0:
        raise import_error(source, "the file has a header but no data rows", "export the data")
    notes: list[str] = []
    zone = _zone(raw, cols.get(ZONE), zone, source, notes)
    stamps = parse_stamp_column(raw[cols[TIME]], source, TIME, utc=True)
    direct = parse_number_column(
        raw[cols[DIRECT]], source, cols[DIRECT], allow_negative=False, unit="gCO2eq/kWh"
    )
    lca = parse_number_column(
        raw[cols[LCA]], source, cols[LCA], allow_negative=False, unit="gCO2eq/kWh"
    )
    for values, column in ((direct, cols[DIRECT]), (lca, cols[LCA])):
        check_limit(values, CARBON_G_PER_KWH, raw[column], source, column,
                    "export the intensity in gCO2eq/kWh (not per MWh) unchanged")
    estimated = _flags(raw[cols[ESTIMATED]], source, cols[ESTIMATED])
    frame = pl.DataFrame(
        {
            "zone": pl.Series([zone] * raw.height, dtype=pl.String),
            "hour_utc": stamps.dt.replace_time_zone("UTC"),
            VALUE_COLUMNS[0]: direct,
            VALUE_COLUMNS[1]: lca,
            "estimated": estimated,
        }
    )
    _check_unique(frame["hour_utc"], source)
    frame = frame.sort("hour_utc")
    notes.append(
        f"{source.name}: {frame.height} hourly row(s) of zone {zone}, "
        f"{format_hour(frame['hour_utc'][0])} to {format_hour(frame['hour_utc'][-1])}; "
        f"{int(frame['estimated'].sum())} flagged estimated by the source"
    )
    if year is None:
        _note_gaps(frame, notes)
        return ImportResult(frame, notes)
    completed = complete_year(frame, year, VALUE_COLUMNS, source)
    return ImportResult(completed.frame, notes + completed.notes)


def _zone(
    raw: pl.DataFrame, column: str | None, zone: str | None, source: Path, notes: list[str]
) -> str:
    """The zone label: the file's single ``Zone Id`` unless ``zone`` overrides it."""
    found: list[str] = []
    if column is not None:
        found = sorted(set(raw[column].str.strip_chars().drop_nulls().to_list()))
    if len(found) > 1:
        shown = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "")
        raise import_error(
            source,
            f"the file mixes {len(found)} zones ({shown})",
            "split it into one file per zone",
            column=column,
        )
    if zone is not None:
        zone = zone.strip()
        if not zone:
            raise import_error(source, "the zone given is empty", "pass a zone id like DE")
        if found and found[0] != zone:
            notes.append(f"zone '{found[0]}' in the file is labelled '{zone}' as requested")
        return zone
    if not found or not found[0]:
        raise import_error(
            source,
            "the zone id is empty",
            "fill in the Zone Id column or pass --zone",
            column=column,
        )
    return found[0]


def _flags(raw: pl.Series, source: Path, column: str) -> pl.Series:
    """Parse true/false (also 1/0, yes/no) into Boolean."""
    text = raw.str.strip_chars().str.to_lowercase()
    bad = _first_index(~(text.is_in(list(_TRUE | _FALSE))).fill_null(False))
    if bad is not None:
        raise import_error(
            source,
            f"'{raw[bad]}' is not true or false",
            "write true or false",
            row=bad + 1,
            column=column,
        )
    return text.is_in(list(_TRUE)).alias("estimated")


def _first_index(mask: pl.Series) -> int | None:
    hits = mask.arg_true()
    return int(hits[0]) if hits.len() else None


def _check_unique(hours: pl.Series, source: Path) -> None:
    """Two rows for one UTC hour cannot both be right: refuse rather than guess."""
    dup = _first_index(hours.is_duplicated())
    if dup is None:
        return
    rows = (hours == hours[dup]).arg_true().to_list()
    raise import_error(
        source,
        f"hour {format_hour(hours[dup])} appears {len(rows)} times (rows "
        f"{', '.join(str(r + 1) for r in rows[:5])})",
        "keep one row per hour",
        row=rows[1] + 1,
        column=TIME,
    )


def _note_gaps(frame: pl.DataFrame, notes: list[str]) -> None:
    """Without a year to complete, gaps are reported but left alone."""
    hours = frame["hour_utc"]
    full = pl.datetime_range(hours[0], hours[-1], "1h", time_unit="us", time_zone="UTC", eager=True)
    missing = full.filter(~full.is_in(hours.implode())).to_list()
    if missing:
        notes.append(
            f"{len(missing)} hour(s) missing between first and last, not filled (give a year "
            f"to fill them): {hour_runs(missing)}"
        )

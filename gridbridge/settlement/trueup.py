"""Metered true-up: correction lines so energy cost and carbon fee follow what really happened.

A round is settled on forecasts: each placement's energy is ``gpus × it_kw × PUE`` kWh per
hour and its emissions use the zone's forecast intensity. Sites then meter what each
placement really drew, hour by hour, and may report the intensity that really occurred (of
the round's signal). The true-up recomputes, per placement:

* actual energy cost = metered kWh × (the zone's price + the site's tariff adder) of that
  hour — the same EUR/kWh the clearing used; only the kWh change;
* actual carbon fee = the round's carbon price × metered kWh × actual intensity (the forecast
  intensity where none is reported);

hours with no metering row keep their forecast. It then posts one ``correction`` batch: for
each placement, the member pays the site the energy difference and pays the carbon fund the
fee difference (a negative difference flows back). Amounts follow the ledger's rounding rule
(:mod:`gridbridge.settlement.postings`): the correction is ``cents(actual) − cents(forecast)``
per placement and kind, so what was posted plus its corrections is the actual figure rounded
once. Corrections follow metered use and are not capped at the bid's value: the cap protects
a bidder from prices, not from drawing more energy than its job was cleared for.

Metering file (CSV or Parquet): ``bid_id``, ``hour_utc``, ``energy_kwh`` (facility kWh in
that hour, >= 0) and optionally ``carbon_g_per_kwh`` (actual intensity, >= 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from gridbridge.errors import InputError
from gridbridge.hours import parse_hour_column
from gridbridge.settlement.postings import CARBON_FUND, Lines, cents, hour_stamp
from optim.candidates import market_arrays
from optim.market import Market

#: trueup.csv's columns: per placement, forecast, actual and difference.
RECORD_COLUMNS = (
    "bid_id", "member", "site_id", "gpu_type", "hours_metered",
    "forecast_kwh", "actual_kwh", "difference_kwh",
    "forecast_kg", "actual_kg", "difference_kg",
    "forecast_energy_cost_eur", "actual_energy_cost_eur", "difference_energy_cost_eur",
    "forecast_carbon_fee_eur", "actual_carbon_fee_eur", "difference_carbon_fee_eur",
)

#: Their types (identifiers text, ``hours_metered`` an integer, figures float).
RECORD_SCHEMA: dict[str, pl.DataType] = {
    c: (pl.String() if c in ("bid_id", "member", "site_id", "gpu_type") else
        pl.Int64() if c == "hours_metered" else pl.Float64()) for c in RECORD_COLUMNS}
#: trueup-<batch>.csv: one file per metering batch in the round's folder.
RECORD_FILE = "trueup-{batch}.csv"


@dataclass(frozen=True, slots=True)
class TrueUp:
    """One metering batch: its id, per-placement records (``RECORD_COLUMNS``, EUR, kWh, kg)
    and the correction lines to post (ledger columns)."""

    batch_id: str
    records: pl.DataFrame
    postings: pl.DataFrame


def _bad(path: str, row: int | None, field: str, message: str, fix: str) -> InputError:
    where = path if row is None else f"{path}, row {row}"
    return InputError(f"{where}, field '{field}': {message} — fix: {fix}")


def read_metering(path: Path) -> tuple[pl.DataFrame, str]:
    """Read and check a metering file; returns it (``hour_utc`` typed) and its batch id
    (``M-`` and a digest of the file's bytes, so the same file is the same batch)."""
    if not path.is_file():
        raise InputError(f"metering file {path} does not exist — fix: give the path of the "
                         "sites' metering CSV or Parquet file")
    try:
        frame = (pl.read_parquet(path) if path.suffix == ".parquet"
                 else pl.read_csv(path, infer_schema_length=0))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path} is not a readable table ({exc}) — fix: write it as CSV "
                         "with a header row, or as Parquet") from None
    name = str(path)
    for column in ("bid_id", "hour_utc", "energy_kwh"):
        if column not in frame.columns:
            raise _bad(name, None, column, "the column is missing",
                       "add it (columns: bid_id, hour_utc, energy_kwh[, carbon_g_per_kwh])")
    hours, errors = parse_hour_column(frame["hour_utc"].cast(pl.String))
    if errors:
        row, err = next(iter(errors.items()))
        raise _bad(name, row + 1, "hour_utc", str(err), err.fix)
    frame = frame.with_columns(hours.alias("hour_utc"))
    for column in ("energy_kwh", "carbon_g_per_kwh"):
        if column not in frame.columns:
            continue
        values = frame[column].cast(pl.Float64, strict=False)
        bad = ((values.is_null() & frame[column].is_not_null()) | values.is_nan()
               | values.is_infinite() | (values < 0))
        if column == "energy_kwh":
            bad = bad | values.is_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise _bad(name, row + 1, column, f"'{frame[column][row]}' is not a number >= 0",
                       "write a finite, non-negative number (kWh, or gCO2eq/kWh)")
        frame = frame.with_columns(values.alias(column))
    duplicated = frame.select("bid_id", "hour_utc").is_duplicated()
    if duplicated.any():
        row = int(duplicated.arg_true()[0])
        raise _bad(name, row + 1, "hour_utc", f"bid {frame['bid_id'][row]} is metered twice "
                   "for this hour", "keep one row per bid and hour")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return frame, f"M-{digest}"


def true_up(market: Market, placements: pl.DataFrame, metering: pl.DataFrame, *,
            round_id: str, batch_id: str, posted_at_utc: datetime,
            carbon_price_eur_per_t: float, source: str = "metering") -> TrueUp:
    """The batch's records and correction lines (module docstring)."""
    arrays = market_arrays(market)
    pool_of = {(s, t): i for i, (s, t) in enumerate(zip(arrays.pool_site, arrays.pool_type,
                                                         strict=True))}
    start0 = market.config.window_start_utc
    placed = {r["bid_id"]: r for r in placements.iter_rows(named=True)}
    # Per placement: sums over its metered hours of (actual − forecast) kWh, kg and EUR.
    delta: dict[str, list[float]] = {}
    if "carbon_g_per_kwh" not in metering.columns:
        metering = metering.with_columns(carbon_g_per_kwh=pl.lit(None, dtype=pl.Float64))
    for i, m in enumerate(metering.iter_rows(named=True), start=1):
        row = placed.get(m["bid_id"])
        if row is None:
            raise _bad(source, i, "bid_id", f"bid {m['bid_id']} has no placement in round "
                       f"{round_id}", "meter only placements of this round (placements.csv)")
        if not row["start_utc"] <= m["hour_utc"] < row["end_utc"]:
            raise _bad(source, i, "hour_utc", f"{hour_stamp(m['hour_utc'])} is outside bid "
                       f"{m['bid_id']}'s placement [{hour_stamp(row['start_utc'])}, "
                       f"{hour_stamp(row['end_utc'])})", "meter only the hours it ran (UTC)")
        p = pool_of[(row["site_id"], row["gpu_type"])]
        h = int((m["hour_utc"] - start0).total_seconds() // 3600)
        kwh_per_gpu = float(arrays.kwh[p, h])
        eur_per_kwh = float(arrays.energy_cost_eur[p, h]) / kwh_per_gpu
        forecast_g = float(arrays.emissions_kg[p, h]) * 1000.0 / kwh_per_gpu
        actual_g = forecast_g if m["carbon_g_per_kwh"] is None else m["carbon_g_per_kwh"]
        forecast_kwh = row["gpus"] * kwh_per_gpu
        d_kwh = m["energy_kwh"] - forecast_kwh
        d_kg = (m["energy_kwh"] * actual_g - forecast_kwh * forecast_g) / 1000.0
        acc = delta.setdefault(m["bid_id"], [0, 0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += d_kwh
        acc[2] += d_kg
        acc[3] += d_kwh * eur_per_kwh
    records = []
    lines = Lines(round_id, hour_stamp(posted_at_utc), [], prefix=f"{round_id}:{batch_id}")
    for bid in sorted(delta):
        row = placed[bid]
        n, d_kwh, d_kg, d_cost = delta[bid]
        d_fee = carbon_price_eur_per_t * d_kg / 1000.0
        fee = row["carbon_fee_eur"]
        records.append((bid, row["member"], row["site_id"], row["gpu_type"], int(n),
                        row["energy_kwh"], row["energy_kwh"] + d_kwh, d_kwh,
                        row["emissions_kg"], row["emissions_kg"] + d_kg, d_kg,
                        row["energy_cost_eur"], row["energy_cost_eur"] + d_cost, d_cost,
                        fee, fee + d_fee, d_fee))
        member, site = f"member:{row['member']}", f"site:{row['site_id']}"
        lines.transfer(bid, member, site, "correction",
                       cents(row["energy_cost_eur"] + d_cost) - cents(row["energy_cost_eur"]))
        lines.transfer(bid, member, CARBON_FUND, "correction", cents(fee + d_fee) - cents(fee))
    frame = pl.DataFrame(records, schema=RECORD_SCHEMA, orient="row")
    money = [c for c in RECORD_COLUMNS if c.endswith(("_eur", "_kwh", "_kg"))]
    frame = frame.with_columns(pl.col(money).round(6))
    return TrueUp(batch_id, frame, lines.frame())


def read_records(folder: Path) -> pl.DataFrame:
    """Every true-up batch's records in a round's folder, with a leading ``batch_id`` column,
    sorted by batch and bid (empty, with the columns, before any true-up)."""
    frames = [pl.read_csv(path, schema=RECORD_SCHEMA).select(
        pl.lit(path.stem.removeprefix("trueup-")).alias("batch_id"), pl.all())
        for path in sorted(folder.glob(RECORD_FILE.format(batch="*")))]
    if not frames:
        return pl.DataFrame(schema={"batch_id": pl.String, **RECORD_SCHEMA})
    return pl.concat(frames).sort("batch_id", "bid_id")


__all__ = ["RECORD_COLUMNS", "RECORD_FILE", "RECORD_SCHEMA", "TrueUp", "read_metering",
           "read_records", "true_up"]

"""Gate closure: freeze a round's bids and snapshot the market into a stored bundle.

:func:`close_round` runs in ONE write transaction: the round goes ``open`` ->
``gate_closed`` and its bundle (DESIGN.md "Market bundle") is stored in
``exchange_round_bundles``, one row per file, as the text the clearing worker validates
(:func:`gridbridge.bundle.validate_bundle`) and clears. Snapshot rules (hours are the
round's window hours, hour-beginning, end exclusive):

* ``capacity`` — one row per registry pool (site, GPU type) and hour: the free GPUs of the
  site's latest telemetry report covering that hour (latest = received last), minus the
  GPUs already committed to placements of other rounds that run in that hour, never below 0;
  an hour no report of the site covers counts 0 GPUs. The ask is the pool's current ask.
* ``grid`` — per zone used by a site and hour: the most recent report of that zone covering
  the hour, in the round's carbon signal. Only the round's signal column is filled; the
  other is left empty (the bundle validator allows that). A zone with hours missing makes
  the snapshot fail: the round goes ``failed`` with a reason naming the zones and hours.
* ``members``, ``gpus``, ``sites`` — the registry as it is at gate closure.
* ``bids`` — the round's submitted (not withdrawn) bids, ``bid_id`` = ``<member>:<bid_id>``
  (bid ids are unique per member only). A deadline after the window end is moved to the
  window end (a job must end inside the round's window); a bid whose shortest option then no
  longer fits is left out of the bundle and listed in ``excluded.csv`` (``bid_id``,
  ``reason`` ``outside_window``, ``detail``), so it is recorded as rejected at clearing.
* ``market.toml`` — the window, carbon price, carbon signal and the solver's time limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import orjson
import polars as pl
import sqlalchemy as sa

from gridbridge.bundle.options import format_gpu_options
from gridbridge.bundle.writer import config_toml
from gridbridge.errors import ConflictError
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import instant_text
from gridbridge.exchange.coverage import latest_hours, window_hours
from gridbridge.hours import format_hour, parse_hour
from optim.market import CARBON_SIGNALS, TABLES, MarketConfig

__all__ = ["CONFIG_NAME", "EXCLUDED_NAME", "SnapshotError", "close_round", "outlook_files",
           "read_bundle_rows", "snapshot_files"]

#: Names of the stored bundle's rows besides ``<table>.csv``.
CONFIG_NAME = "market.toml"
EXCLUDED_NAME = "excluded.csv"
#: States whose placements hold GPUs (their rounds cleared; ``settled`` comes later).
COMMITTED_STATES = ("cleared", "settled")


class SnapshotError(Exception):
    """The market cannot be snapshot (e.g. grid hours missing); the round fails with it."""


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime

    @cached_property
    def hours(self) -> list[str]:
        # Read once per pool and zone: worked out once.
        return window_hours(self.start, self.end)


def _capacity(conn: sa.Connection, round_id: str | None, window: _Window) -> pl.DataFrame:
    pools = list(conn.execute(sa.select(t.pools.c.site_id, t.pools.c.gpu_type,
                                        t.pools.c.ask_eur_per_gpu_hour)
                              .order_by(t.pools.c.site_id, t.pools.c.gpu_type)).mappings())
    sites = sorted({p["site_id"] for p in pools})
    latest = latest_hours(conn, t.telemetry_reports.c.site_id, sites, window.start, window.end)
    committed = _committed(conn, round_id, window)
    rows_out = []
    for pool in pools:
        site, gpu_type = pool["site_id"], pool["gpu_type"]
        for hour in window.hours:
            found = latest.get((site, hour))
            gpus = 0 if found is None else found.gpus_free.get(gpu_type, 0)
            gpus = max(0, gpus - committed.get((site, gpu_type, hour), 0))
            rows_out.append((site, gpu_type, hour, gpus, pool["ask_eur_per_gpu_hour"]))
    return pl.DataFrame(rows_out, orient="row", schema={
        "site_id": pl.String, "gpu_type": pl.String, "hour_utc": pl.String,
        "gpus_available": pl.Int64, "ask_eur_per_gpu_hour": pl.Float64})


def _committed(conn: sa.Connection, round_id: str | None,
               window: _Window) -> dict[tuple[str, str, str], int]:
    """GPUs per (site, GPU type, hour) held by placements of cleared rounds other than
    ``round_id`` (of every cleared round when None)."""
    p, r = t.placements, t.rounds
    rows = conn.execute(
        sa.select(p.c.site_id, p.c.gpu_type, p.c.start_utc, p.c.end_utc, p.c.gpus)
        .select_from(p.join(r, r.c.round_id == p.c.round_id))
        .where(p.c.round_id != (round_id or ""), r.c.state.in_(COMMITTED_STATES),
               p.c.start_utc < format_hour(window.end),
               p.c.end_utc > format_hour(window.start)))
    held: dict[tuple[str, str, str], int] = defaultdict(int)
    for site, gpu_type, start, end, gpus in rows:
        hour, stop = parse_hour(start), parse_hour(end)
        while hour < stop:
            held[(site, gpu_type, format_hour(hour))] += gpus
            hour += timedelta(hours=1)
    return held


def _grid(conn: sa.Connection, zones: list[str], signal: str, window: _Window, *,
          complete: bool = True) -> pl.DataFrame:
    """Per zone and hour, the latest report's intensity (``signal``) and price. With
    ``complete`` a missing zone-hour is a :class:`SnapshotError`; without, it is left out."""
    tr = t.telemetry_reports
    latest = latest_hours(conn, tr.c.zone, zones, window.start, window.end,
                          tr.c.signal == signal)
    missing = {z: [h for h in window.hours if (z, h) not in latest] for z in zones}
    missing = {z: hours for z, hours in missing.items() if hours}
    if missing and complete:
        parts = [f"zone {z}: {len(h)} of {len(window.hours)} hours ({h[0]} .. {h[-1]})"
                 for z, h in sorted(missing.items())]
        raise SnapshotError(
            f"no '{signal}' grid data for {'; '.join(parts)} — fix: the sites of those zones "
            "must report telemetry covering the whole window before the round closes; open a "
            "new round")
    out = []
    for zone in zones:
        for hour in window.hours:
            found = latest.get((zone, hour))
            if found is None:
                continue
            row: dict[str, object] = {"zone": zone, "hour_utc": hour,
                                      "price_eur_per_mwh": found.price_eur_per_mwh}
            for s in CARBON_SIGNALS:
                row[f"carbon_{s}_g_per_kwh"] = found.carbon_g_per_kwh if s == signal else None
            out.append(row)
    return pl.DataFrame(out, schema={
        "zone": pl.String, "hour_utc": pl.String, "carbon_direct_g_per_kwh": pl.Float64,
        "carbon_lifecycle_g_per_kwh": pl.Float64, "price_eur_per_mwh": pl.Float64})


def _bids(conn: sa.Connection, round_id: str,
          window: _Window) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The bundle's bids and the bids left out (``excluded.csv``)."""
    rows = conn.execute(sa.select(t.bids).where(t.bids.c.round_id == round_id,
                                                t.bids.c.state == "submitted")
                        .order_by(t.bids.c.member, t.bids.c.bid_id)).mappings()
    kept, excluded = [], []
    window_end = format_hour(window.end)
    for b in rows:
        options = {o["gpu_type"]: o["hours"] for o in orjson.loads(b["options_json"])}
        bid_id = f"{b['member']}:{b['bid_id']}"
        deadline = min(b["deadline_utc"], window_end)  # text order is time order
        earliest = max(parse_hour(b["release_utc"]), window.start)
        room = (parse_hour(deadline) - earliest) / timedelta(hours=1)
        if min(options.values()) > room:
            excluded.append((bid_id, "outside_window",
                             f"the shortest option ({min(options.values())} h) does not fit "
                             f"in the round's window [{format_hour(window.start)}, "
                             f"{window_end}) between release and deadline"))
            continue
        jurisdictions = orjson.loads(b["allowed_jurisdictions_json"])
        kept.append((bid_id, b["member"], format_gpu_options(options), b["gpus"],
                     b["release_utc"], deadline, b["value_eur"],
                     "*" if "*" in jurisdictions else ";".join(jurisdictions)))
    bids = pl.DataFrame(kept, orient="row", schema={
        "bid_id": pl.String, "member": pl.String, "gpu_options": pl.String, "gpus": pl.Int64,
        "release_utc": pl.String, "deadline_utc": pl.String, "value_eur": pl.Float64,
        "allowed_jurisdictions": pl.String})
    return bids, pl.DataFrame(excluded, orient="row",
                              schema={"bid_id": pl.String, "reason": pl.String,
                                      "detail": pl.String})


def _registry_tables(conn: sa.Connection) -> dict[str, pl.DataFrame]:
    """The bundle's ``members``, ``gpus`` and ``sites`` tables: the registry as it is now."""
    return {
        "members": pl.DataFrame(list(conn.execute(
            sa.select(t.members.c.member, t.members.c.name, t.members.c.pledge_share)
            .order_by(t.members.c.member)).mappings())),
        "gpus": pl.DataFrame(list(conn.execute(
            sa.select(t.gpu_types.c.gpu_type, t.gpu_types.c.it_kw, t.gpu_types.c.board_kw)
            .order_by(t.gpu_types.c.gpu_type)).mappings())),
        "sites": pl.DataFrame(list(conn.execute(
            sa.select(t.sites.c.site_id, t.sites.c.member, t.sites.c.zone,
                      t.sites.c.jurisdiction, t.sites.c.lat, t.sites.c.lon, t.sites.c.pue,
                      t.sites.c.tariff_adder_eur_per_mwh).order_by(t.sites.c.site_id)
        ).mappings())),
    }


def _market_tables(conn: sa.Connection, round_id: str | None, window: _Window, signal: str, *,
                   complete: bool) -> dict[str, pl.DataFrame]:
    """Every bundle table but ``bids``, for ``window`` (see the module doc)."""
    tables = _registry_tables(conn)
    zones = sorted(set(tables["sites"]["zone"].to_list()))
    tables["capacity"] = _capacity(conn, round_id, window)
    tables["grid"] = _grid(conn, zones, signal, window, complete=complete)
    return tables


def snapshot_files(conn: sa.Connection, round_row: Mapping[str, Any],
                   time_limit_s: float) -> dict[str, str]:
    """The round's bundle as file name -> text (see the module doc); raises
    :class:`SnapshotError` when it cannot be taken."""
    window = _Window(parse_hour(round_row["window_start_utc"]),
                     parse_hour(round_row["window_end_utc"]))
    tables = _market_tables(conn, round_row["round_id"], window, round_row["carbon_signal"],
                            complete=True)
    tables["bids"], excluded = _bids(conn, round_row["round_id"], window)
    config = MarketConfig(window.start, window.end, round_row["carbon_price_eur_per_t"],
                          round_row["carbon_signal"], time_limit_s=time_limit_s)
    files = {f"{name}.csv": tables[name].write_csv() for name in TABLES}
    files[EXCLUDED_NAME] = excluded.write_csv()
    files[CONFIG_NAME] = config_toml(config)
    return files


def outlook_files(conn: sa.Connection, start: datetime, end: datetime, signal: str,
                  carbon_price_eur_per_t: float) -> dict[str, str]:
    """The market as a round over [``start``, ``end``) would see it now, without bids: file
    name -> text for ``market.toml`` and every bundle table but ``bids.csv``.

    Capacity is net of every cleared round's placements; zone-hours without ``signal`` grid
    data are left out of ``grid.csv`` (a planner sees the gaps instead of an error)."""
    window = _Window(start, end)
    tables = _market_tables(conn, None, window, signal, complete=False)
    files = {f"{name}.csv": frame.write_csv() for name, frame in tables.items()}
    files[CONFIG_NAME] = config_toml(MarketConfig(start, end, carbon_price_eur_per_t, signal))
    return files


def read_bundle_rows(conn: sa.Connection, round_id: str) -> dict[str, str]:
    """The round's stored bundle: file name -> text (empty when none was stored)."""
    rows = conn.execute(sa.select(t.round_bundles.c.name, t.round_bundles.c.content)
                        .where(t.round_bundles.c.round_id == round_id))
    return dict(tuple(r) for r in rows)


def close_round(conn: sa.Connection, round_id: str, at: datetime,
                time_limit_s: float) -> tuple[str, str | None]:
    """Close round ``round_id`` on ``conn`` (the caller's write transaction): ``open`` ->
    ``gate_closed`` with its bundle stored, or ``failed`` with the reason when the snapshot
    cannot be taken. Returns (new state, reason). :class:`ConflictError` unless ``open``."""
    row = conn.execute(sa.select(t.rounds).where(t.rounds.c.round_id == round_id)
                       ).mappings().first()
    assert row is not None, "the caller checked the round exists"
    if row["state"] != "open":
        raise ConflictError(f"round {round_id} is {row['state']}; only an open round can be "
                            "closed — fix: check the round's state (GET /v1/rounds/"
                            f"{round_id})")
    try:
        # The planner's time limit for this round, else the server's.
        files = snapshot_files(conn, row, row["time_limit_s"] or time_limit_s)
    except SnapshotError as exc:
        state, reason = "failed", f"snapshot failed: {exc}"
    else:
        conn.execute(t.round_bundles.insert(), [
            {"round_id": round_id, "name": name, "content": text} for name, text in files.items()])
        state, reason = "gate_closed", None
    # Conditional on the state read above, so a concurrent close cannot close it twice.
    done = conn.execute(t.rounds.update().where(t.rounds.c.round_id == round_id,
                                                t.rounds.c.state == "open")
                        .values(state=state, reason=reason, updated_at_utc=instant_text(at)))
    if done.rowcount != 1:
        raise ConflictError(f"round {round_id} was closed by another call — fix: read it "
                            f"(GET /v1/rounds/{round_id})")
    return state, reason

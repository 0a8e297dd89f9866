"""The exchange's tables (SQLAlchemy Core), in the database it shares with the ledger.

Every name starts with ``exchange_``; the shared ``schema_version`` table holds the row
``component='exchange'`` (:data:`EXCHANGE_SCHEMA_VERSION`). Only portable types are used so
the same tables run on SQLite and PostgreSQL: unbounded VARCHARs (SQLite ignores lengths,
PostgreSQL would enforce them), floats, integers, and text time stamps:

* hours (``*_utc`` hour columns) as ``2023-07-03T14:00Z`` (:data:`gridbridge.hours.HOUR_FORMAT`),
  so text order is time order;
* instants (``created_at_utc``, ``at_utc``, ...) as ``2023-07-03T14:05:07.123Z``.

Units follow DESIGN.md: whole GPUs, gCO2eq/kWh, EUR/MWh, EUR per GPU-hour, EUR per tonne.

Gate closure stores the round's bundle (``exchange_round_bundles``); the clearing worker
its progress (``exchange_round_runs``) and results (``exchange_placements``,
``exchange_prices``, ``exchange_rejected``); metering its reports
(``exchange_metering_reports``), metered placement-hours (``exchange_metering_rows``) and
true-up records (``exchange_trueup_records``). A new table needs no upgrade step
(``create_all`` adds it), a changed one gets a step in :data:`UPGRADES`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import sqlalchemy as sa

from gridbridge.db import schema_version_table
from gridbridge.exchange.forecast import HourForecast, pack

__all__ = [
    "EXCHANGE_SCHEMA_VERSION",
    "UPGRADES",
    "audit",
    "bids",
    "gpu_types",
    "members",
    "metadata",
    "metering_reports",
    "metering_rows",
    "placements",
    "pools",
    "prices",
    "rejected",
    "round_bundles",
    "round_runs",
    "rounds",
    "schema_version",
    "sites",
    "telemetry_reports",
    "tokens",
    "trueup_records",
    "zone_signals",
]

#: The exchange's tables as this code writes them; stored in ``schema_version``.
EXCHANGE_SCHEMA_VERSION = 3

#: Steps from schema version n to n + 1 (alter existing tables), run by ``exchange init``.
UPGRADES: dict[int, Callable[[sa.Connection], None]] = {}  # filled at the end of the module

metadata = sa.MetaData()

schema_version = schema_version_table(metadata)

# A growing integer key: INTEGER on SQLite (so it is the rowid, assigned on insert), BIGINT
# (an identity/serial column) on PostgreSQL.
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# ------------------------------------------------------------------------------ registry

members = sa.Table(
    "exchange_members",
    metadata,
    sa.Column("member", sa.String(), primary_key=True),  # ISO code, e.g. KR
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("pledge_share", sa.Float(), nullable=False),  # fraction 0..1
)

gpu_types = sa.Table(
    "exchange_gpu_types",
    metadata,
    sa.Column("gpu_type", sa.String(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("it_kw", sa.Float(), nullable=False),  # IT power per GPU incl. its node share
    sa.Column("board_kw", sa.Float(), nullable=False),
    sa.Column("relative_speed", sa.Float(), nullable=False),  # H100 = 1.0
    sa.Column("gpus_per_node", sa.Integer(), nullable=False),
    sa.Column("ref_ask_eur_per_gpu_hour", sa.Float(), nullable=False),
)

sites = sa.Table(
    "exchange_sites",
    metadata,
    sa.Column("site_id", sa.String(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("member", sa.String(), sa.ForeignKey("exchange_members.member"), nullable=False),
    sa.Column("zone", sa.String(), nullable=False, index=True),
    sa.Column("jurisdiction", sa.String(), nullable=False),
    sa.Column("timezone", sa.String(), nullable=False),
    sa.Column("lat", sa.Float(), nullable=False),
    sa.Column("lon", sa.Float(), nullable=False),
    sa.Column("pue", sa.Float(), nullable=False),
    sa.Column("tariff_adder_eur_per_mwh", sa.Float(), nullable=False),
)

pools = sa.Table(
    "exchange_pools",
    metadata,
    sa.Column("site_id", sa.String(), sa.ForeignKey("exchange_sites.site_id"),
              primary_key=True),
    sa.Column("gpu_type", sa.String(), sa.ForeignKey("exchange_gpu_types.gpu_type"),
              primary_key=True),
    sa.Column("gpus", sa.Integer(), nullable=False),  # pooled GPUs of this type at the site
    sa.Column("ask_eur_per_gpu_hour", sa.Float(), nullable=False),  # on top of energy
    sa.Column("ask_updated_at_utc", sa.String(), nullable=True),  # null: the registry's ask
)

# -------------------------------------------------------------------------------- access

tokens = sa.Table(
    "exchange_tokens",
    metadata,
    sa.Column("token_id", sa.String(), primary_key=True),  # public handle, e.g. tok_3f9a...
    sa.Column("role", sa.String(), nullable=False),  # site | member | planner | ...
    sa.Column("subject", sa.String(), nullable=True),  # site_id or member code; else null
    sa.Column("token_sha256", sa.String(), nullable=False, unique=True),  # hex; never the token
    sa.Column("created_at_utc", sa.String(), nullable=False),
    sa.Column("revoked_at_utc", sa.String(), nullable=True),
)

audit = sa.Table(
    "exchange_audit",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("at_utc", sa.String(), nullable=False),
    sa.Column("request_id", sa.String(), nullable=False),
    sa.Column("token_id", sa.String(), nullable=True),  # null: no valid token
    sa.Column("role", sa.String(), nullable=True),
    sa.Column("subject", sa.String(), nullable=True),
    sa.Column("method", sa.String(), nullable=False),
    sa.Column("path", sa.String(), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
)

# ----------------------------------------------------------------------------- telemetry

telemetry_reports = sa.Table(
    "exchange_telemetry_reports",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(), sa.ForeignKey("exchange_sites.site_id"), nullable=False),
    sa.Column("report_id", sa.String(), nullable=False),
    # SHA-256 of the report as validated: a re-delivery must match it to be a duplicate.
    sa.Column("body_sha256", sa.String(), nullable=False),
    sa.Column("received_at_utc", sa.String(), nullable=False),
    sa.Column("zone", sa.String(), nullable=False),
    sa.Column("signal", sa.String(), nullable=False),  # direct | lifecycle
    sa.Column("provider", sa.String(), nullable=False),
    sa.Column("measured_at_utc", sa.String(), nullable=False),
    sa.Column("hours", sa.Integer(), nullable=False),
    # The span of the report's hours, [first, end) (end = last hour + 1 h), and the hours
    # themselves as one JSON document (gridbridge.exchange.forecast): a report is one row,
    # written in one insert, so ingest costs the same for 1 hour or 744. Gate closure reads
    # the spans to find which reports it needs, then only those documents.
    sa.Column("first_hour_utc", sa.String(), nullable=False, server_default=sa.text("''")),
    sa.Column("end_hour_utc", sa.String(), nullable=False, server_default=sa.text("''")),
    sa.Column("forecast_json", sa.Text(), nullable=False, server_default=sa.text("'{}'")),
    # What makes a re-delivered report a duplicate, inside the inserting transaction.
    sa.UniqueConstraint("site_id", "report_id", name="uq_exchange_telemetry_site_report"),
    # The latest report of a zone (grid data at gate closure).
    sa.Index("ix_exchange_telemetry_zone", "zone", "id"),
    # The reports that reach into a window, per site (capacity) and per zone (grid).
    sa.Index("ix_exchange_telemetry_site_end", "site_id", "end_hour_utc"),
    sa.Index("ix_exchange_telemetry_zone_end", "zone", "end_hour_utc"),
)

# The carbon signal of each zone's series, fixed by its first report: a primary key, so two
# sites of one zone racing with different signals cannot both win (never mix signals).
zone_signals = sa.Table(
    "exchange_zone_signals",
    metadata,
    sa.Column("zone", sa.String(), primary_key=True),
    sa.Column("signal", sa.String(), nullable=False),
    sa.Column("set_by_report_pk", _SERIAL, sa.ForeignKey("exchange_telemetry_reports.id"),
              nullable=False),
)

# --------------------------------------------------------------------------- rounds, bids

rounds = sa.Table(
    "exchange_rounds",
    metadata,
    sa.Column("round_id", sa.String(), primary_key=True),
    # open | gate_closed | clearing | cleared | settled | failed
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("window_start_utc", sa.String(), nullable=False),
    sa.Column("window_end_utc", sa.String(), nullable=False),  # exclusive
    sa.Column("carbon_price_eur_per_t", sa.Float(), nullable=False),
    sa.Column("carbon_signal", sa.String(), nullable=False),
    sa.Column("created_at_utc", sa.String(), nullable=False),
    sa.Column("created_by", sa.String(), nullable=False),  # role or role:subject
    sa.Column("updated_at_utc", sa.String(), nullable=False),
    sa.Column("reason", sa.String(), nullable=True),  # why it failed
    # v2: the solver's time limit (s) the planner chose; null: the server's default.
    sa.Column("time_limit_s", sa.Float(), nullable=True),
)

bids = sa.Table(
    "exchange_bids",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              primary_key=True),
    # Bid ids are the member's own: unique per member within a round, so using an id
    # another member chose neither fails nor reveals that bid (bids are sealed).
    sa.Column("member", sa.String(), sa.ForeignKey("exchange_members.member"),
              primary_key=True),
    sa.Column("bid_id", sa.String(), primary_key=True),
    sa.Column("gpus", sa.Integer(), nullable=False),
    sa.Column("options_json", sa.String(), nullable=False),  # [{"gpu_type":..,"hours":..}]
    sa.Column("release_utc", sa.String(), nullable=False),
    sa.Column("deadline_utc", sa.String(), nullable=False),  # exclusive
    sa.Column("value_eur", sa.Float(), nullable=False),
    sa.Column("allowed_jurisdictions_json", sa.String(), nullable=False),  # ["DE", ...]|["*"]
    sa.Column("state", sa.String(), nullable=False),  # submitted | withdrawn
    sa.Column("submitted_at_utc", sa.String(), nullable=False),
    sa.Column("amended_at_utc", sa.String(), nullable=True),
    sa.Column("withdrawn_at_utc", sa.String(), nullable=True),
)

# ------------------------------------------------------------------------ clearing rounds

# The round's market bundle as taken at gate closure: one row per file (``market.toml``,
# ``members.csv`` ... ``bids.csv``, and ``excluded.csv``: bids left out of the bundle, with
# why), holding the file's text exactly as the worker validates and clears it, so the round
# can be re-run and audited from these rows alone.
round_bundles = sa.Table(
    "exchange_round_bundles",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              primary_key=True),
    sa.Column("name", sa.String(), primary_key=True),  # file name, e.g. capacity.csv
    sa.Column("content", sa.Text(), nullable=False),
)

# One row per round taken by a worker: what it is doing (``progress``), when, and the
# round's figures once cleared. A new table rather than columns of exchange_rounds, so no
# upgrade step is needed.
round_runs = sa.Table(
    "exchange_round_runs",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              primary_key=True),
    sa.Column("progress", sa.String(), nullable=False),  # e.g. bound, search, pricing
    sa.Column("claimed_at_utc", sa.String(), nullable=False),
    sa.Column("finished_at_utc", sa.String(), nullable=True),
    sa.Column("solve_seconds", sa.Float(), nullable=True),  # wall seconds of the clearing
    sa.Column("summary_json", sa.Text(), nullable=True),  # summary.json, once cleared
    # v2, the clearing lease: the worker holding the round (host:pid:nonce) until
    # ``lease_until_utc`` (an instant, renewed while it solves), and how many times a worker
    # took it. A round whose lease ran out (its process died) is taken by another worker.
    sa.Column("worker_id", sa.String(), nullable=True),
    sa.Column("lease_until_utc", sa.String(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("1")),
)

# Accepted bids of cleared rounds (placements.csv plus the priced columns), EUR per whole
# job; costs positive. ``member``/``bid_id`` are the exchange's bid key; the bundle and the
# ledger call the bid ``<member>:<bid_id>``.
placements = sa.Table(
    "exchange_placements",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              primary_key=True),
    sa.Column("member", sa.String(), primary_key=True),
    sa.Column("bid_id", sa.String(), primary_key=True),
    sa.Column("site_id", sa.String(), sa.ForeignKey("exchange_sites.site_id"), nullable=False),
    sa.Column("gpu_type", sa.String(), nullable=False),
    sa.Column("start_utc", sa.String(), nullable=False),
    sa.Column("end_utc", sa.String(), nullable=False),  # exclusive
    sa.Column("gpus", sa.Integer(), nullable=False),
    sa.Column("energy_kwh", sa.Float(), nullable=False),
    sa.Column("emissions_kg", sa.Float(), nullable=False),
    sa.Column("energy_cost_eur", sa.Float(), nullable=False),
    sa.Column("ask_eur", sa.Float(), nullable=False),
    sa.Column("carbon_fee_eur", sa.Float(), nullable=False),
    sa.Column("capacity_eur", sa.Float(), nullable=False),
    sa.Column("value_eur", sa.Float(), nullable=False),
    sa.Column("payment_eur", sa.Float(), nullable=False),  # what the member pays
    sa.Column("uplift_eur", sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(["round_id", "member", "bid_id"],
                            ["exchange_bids.round_id", "exchange_bids.member",
                             "exchange_bids.bid_id"]),
    # Committed capacity at gate closure and a site's assignments.
    sa.Index("ix_exchange_placements_site", "site_id", "start_utc"),
)

prices = sa.Table(
    "exchange_prices",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              primary_key=True),
    sa.Column("site_id", sa.String(), primary_key=True),
    sa.Column("gpu_type", sa.String(), primary_key=True),
    sa.Column("hour_utc", sa.String(), primary_key=True),
    sa.Column("capacity_price_eur_per_gpu_hour", sa.Float(), nullable=False),
)

rejected = sa.Table(
    "exchange_rejected",
    metadata,
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              primary_key=True),
    sa.Column("member", sa.String(), primary_key=True),
    sa.Column("bid_id", sa.String(), primary_key=True),
    sa.Column("reason", sa.String(), nullable=False),
    sa.Column("detail", sa.String(), nullable=True),
    sa.Column("lost_opportunity_eur", sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(["round_id", "member", "bid_id"],
                            ["exchange_bids.round_id", "exchange_bids.member",
                             "exchange_bids.bid_id"]),
)

# ------------------------------------------------------------------------------ metering

# One row per metering report a site delivered; ``(site_id, report_id)`` makes a
# re-delivery a duplicate (like telemetry). ``batch_id`` names the report's correction batch
# in the ledger (``ledger_batches``); ``postings`` is 0 (and no batch is posted) when the
# true-up changed no cent.
metering_reports = sa.Table(
    "exchange_metering_reports",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(), sa.ForeignKey("exchange_sites.site_id"), nullable=False),
    sa.Column("report_id", sa.String(), nullable=False),
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              nullable=False),
    sa.Column("body_sha256", sa.String(), nullable=False),  # hex of the validated report
    sa.Column("received_at_utc", sa.String(), nullable=False),
    sa.Column("batch_id", sa.String(), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("postings", sa.Integer(), nullable=False),  # correction lines posted
    sa.UniqueConstraint("site_id", "report_id", name="uq_exchange_metering_site_report"),
    sa.UniqueConstraint("round_id", "batch_id", name="uq_exchange_metering_batch"),
)

# Metered placement-hours: facility kWh and, optionally, the actual intensity (gCO2eq/kWh).
# A placement-hour is metered once (the true-up corrects against the forecast, so metering
# it twice would correct it twice): the primary key refuses a second time.
metering_rows = sa.Table(
    "exchange_metering_rows",
    metadata,
    sa.Column("round_id", sa.String(), primary_key=True),
    sa.Column("member", sa.String(), primary_key=True),
    sa.Column("bid_id", sa.String(), primary_key=True),
    sa.Column("hour_utc", sa.String(), primary_key=True),
    sa.Column("report_pk", _SERIAL, sa.ForeignKey("exchange_metering_reports.id"),
              nullable=False, index=True),
    sa.Column("energy_kwh", sa.Float(), nullable=False),
    sa.Column("carbon_g_per_kwh", sa.Float(), nullable=True),  # null: the forecast's
    sa.ForeignKeyConstraint(["round_id", "member", "bid_id"],
                            ["exchange_placements.round_id", "exchange_placements.member",
                             "exchange_placements.bid_id"]),
)

# The true-up of each metering report, per placement (gridbridge.settlement.trueup's
# RECORD_COLUMNS: kWh, kg CO2eq, EUR forecast / actual / difference); ``bid_id`` is the
# bundle's ``<member>:<bid_id>``. The reports' ``metering`` table reads these rows.
trueup_records = sa.Table(
    "exchange_trueup_records",
    metadata,
    sa.Column("report_pk", _SERIAL, sa.ForeignKey("exchange_metering_reports.id"),
              primary_key=True),
    sa.Column("bid_id", sa.String(), primary_key=True),
    sa.Column("round_id", sa.String(), sa.ForeignKey("exchange_rounds.round_id"),
              nullable=False, index=True),
    sa.Column("batch_id", sa.String(), nullable=False),
    *(sa.Column(name, sa.String() if name in ("member", "site_id", "gpu_type") else
                sa.Integer() if name == "hours_metered" else sa.Float(), nullable=False)
      for name in ("member", "site_id", "gpu_type", "hours_metered",
                   "forecast_kwh", "actual_kwh", "difference_kwh",
                   "forecast_kg", "actual_kg", "difference_kg",
                   "forecast_energy_cost_eur", "actual_energy_cost_eur",
                   "difference_energy_cost_eur", "forecast_carbon_fee_eur",
                   "actual_carbon_fee_eur", "difference_carbon_fee_eur")),
)


def _add_columns(conn: sa.Connection, table: sa.Table, *names: str) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for ``table``'s columns ``names`` as defined above
    (portable: both SQLite and PostgreSQL take a nullable column or one with a default)."""
    for name in names:
        column = table.c[name]
        ddl = f"ALTER TABLE {table.name} ADD COLUMN {name} {column.type.compile(conn.dialect)}"
        if column.server_default is not None:
            ddl += f" DEFAULT {column.server_default.arg.text} NOT NULL"  # type: ignore[attr-defined]
        conn.execute(sa.text(ddl))


def _v1_to_v2(conn: sa.Connection) -> None:
    """v2: a round's own time limit, and the clearing lease."""
    _add_columns(conn, rounds, "time_limit_s")
    _add_columns(conn, round_runs, "worker_id", "lease_until_utc", "attempts")


UPGRADES[1] = _v1_to_v2


def _v2_to_v3(conn: sa.Connection) -> None:
    """v3: a telemetry report's hours move from the per-hour tables of v2
    (``exchange_capacity_forecast``, ``exchange_grid_forecast``) into its own row."""
    _add_columns(conn, telemetry_reports, "first_hour_utc", "end_hour_utc", "forecast_json")
    for index in telemetry_reports.indexes:
        if index.name in ("ix_exchange_telemetry_site_end", "ix_exchange_telemetry_zone_end"):
            index.create(conn)
    ids = list(conn.execute(sa.text("SELECT id FROM exchange_telemetry_reports")).scalars())
    for start in range(0, len(ids), 500):  # bounded IN lists and memory
        _move_v2_forecasts(conn, ids[start:start + 500])
    for name in ("exchange_capacity_forecast", "exchange_grid_forecast"):
        conn.execute(sa.text(f"DROP TABLE {name}"))


def _move_v2_forecasts(conn: sa.Connection, ids: list[int]) -> None:
    """Pack the v2 per-hour rows of the reports ``ids`` into their report rows."""
    chosen = {"ids": ids}
    gpus: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for pk, gpu_type, hour, free in conn.execute(sa.text(
            "SELECT report_pk, gpu_type, hour_utc, gpus_free FROM exchange_capacity_forecast "
            "WHERE report_pk IN :ids").bindparams(sa.bindparam("ids", expanding=True)), chosen):
        gpus[(pk, hour)][gpu_type] = free
    hours: dict[int, list[tuple[str, HourForecast]]] = defaultdict(list)
    for pk, hour, carbon, price in conn.execute(sa.text(
            "SELECT report_pk, hour_utc, carbon_g_per_kwh, price_eur_per_mwh "
            "FROM exchange_grid_forecast WHERE report_pk IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)), chosen):
        hours[pk].append((hour, HourForecast(gpus.get((pk, hour), {}), carbon, price)))
    updates = []
    for pk, pairs in hours.items():
        packed = pack(pairs)
        updates.append({"pk": pk, "first": packed.first_hour_utc, "end": packed.end_hour_utc,
                        "doc": packed.forecast_json})
    if updates:
        conn.execute(sa.text(
            "UPDATE exchange_telemetry_reports SET first_hour_utc = :first, "
            "end_hour_utc = :end, forecast_json = :doc WHERE id = :pk"), updates)


UPGRADES[2] = _v2_to_v3

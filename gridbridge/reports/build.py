"""The settlement reports of one cleared round, as typed polars tables.

Signs follow the ledger unless a column says otherwise: a positive ``amount_cents`` /
``*_eur`` is money the account receives, negative money it pays. Two exceptions, named so:
``cross_border`` gives what a payer **paid** (positive), and FOCUS's ``BilledCost`` /
``EffectiveCost`` are what the member is billed (positive = it pays, i.e. −amount).

Every money figure is summed in integer cents from the ledger lines and converted to EUR
(``cents / 100``, so exactly the 2-decimal figure) only at the end, so each total equals the
ledger's total for the same lines to the cent. Physical totals (kWh, kg CO2eq) are summed in
millionths, the precision placements.csv is written to, so they too are exact and repeatable.
Every table is sorted on a unique key, so the same inputs always give the same rows in the
same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import polars as pl

from gridbridge.errors import InputError
from gridbridge.hours import HourParseError, parse_hour
from gridbridge.ledger import CARBON_FUND, KINDS, POSTING_SCHEMA
from gridbridge.reports.inputs import RoundInputs, load_round
from gridbridge.settlement.trueup import read_records

__all__ = ["REPORT_TABLES", "build_reports", "build_reports_from"]

#: The report tables, in the order they are written (names are the file stems / sheets).
REPORT_TABLES = ("alliance_summary", "member_totals", "member_statements", "cross_border",
                 "site_statements", "site_utilisation_daily", "usage_records", "focus_costs",
                 "metering", "ledger")
#: Kinds of the lines that pay a site for a job: the "who pays whom" of cross_border.
FLOW_KINDS = ("energy", "ask", "capacity", "correction")
#: Site revenue columns, by kind; anything else on a site account lands in ``other_eur``.
SITE_KINDS = ("energy", "ask", "capacity", "correction")
#: FOCUS ChargeCategory per ledger kind.
CHARGE_CATEGORY = {"energy": "Usage", "ask": "Usage", "capacity": "Usage",
                   "correction": "Usage", "carbon_fee": "Tax", "uplift": "Adjustment",
                   "rounding": "Adjustment"}
#: Kinds whose FOCUS row carries the job's GPU-hours as ConsumedQuantity. Corrections do not:
#: their job's GPU-hours are already on its usage rows and would be counted twice.
USAGE_KINDS = ("energy", "ask", "capacity")
#: ProviderName of round-level lines (no bid, so no site provided anything).
ALLIANCE_PROVIDER = "alliance"
UTC = pl.Datetime("us", "UTC")
#: Columns of intensity provenance that a bundle's grid table may carry, most specific first.
SOURCE_COLUMNS = ("carbon_{signal}_source", "carbon_source", "source")


def _eur(cents: pl.Expr) -> pl.Expr:
    """Integer cents to EUR: the nearest float to the exact 2-decimal figure."""
    return (cents.cast(pl.Int64) / 100).round(2)


def _micro_sum(column: str) -> pl.Expr:
    """Sum of a 6-decimal column, exact: in millionths, then back to the unit."""
    return ((pl.col(column) * 1_000_000).round().cast(pl.Int64).sum() / 1_000_000).alias(column)


def _sum_kind(kind: str, name: str) -> pl.Expr:
    return pl.col("amount_cents").filter(pl.col("kind") == kind).sum().alias(name)


def _lines(postings: pl.DataFrame) -> pl.DataFrame:
    """Ledger lines with the account split (``account_type``, ``party``) and a join key."""
    parts = pl.col("account").str.splitn(":", 2)
    return postings.with_columns(
        account_type=parts.struct.field("field_0"),
        party=parts.struct.field("field_1"),
        # Round-level lines have no bid; "" lets them group together in joins.
        _bid=pl.col("bid_id").fill_null(""),
    )


def _window(summary: dict[str, object], key: str) -> datetime | None:
    value = summary.get(key)
    if not isinstance(value, str):
        return None
    try:
        return parse_hour(value)
    except HourParseError as exc:
        raise InputError(f"summary.json, {key}: {exc}; {exc.fix} — or re-run gridbridge "
                         "clear") from None


def _number(data: object, *keys: str) -> float | None:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return float(data) if isinstance(data, int | float) and not isinstance(data, bool) else None


class _Round:
    """What the builders share: the inputs plus the lookups several tables need."""

    def __init__(self, inputs: RoundInputs) -> None:
        self.inputs = inputs
        self.round_id = inputs.round_id
        self.summary = inputs.summary
        self.placements = inputs.placements
        self.lines = _lines(inputs.postings)
        self.start = _window(inputs.summary, "window_start_utc")
        self.end = _window(inputs.summary, "window_end_utc")
        market = inputs.market
        self.sites = market.sites.select(
            "site_id", pl.col("member").alias("site_member"), "zone").sort("site_id")
        self._check_accounts()
        members: set[str] = set(market.members["member"].to_list())
        members |= set(self.placements["member"].to_list())
        members |= set(self.sites["site_member"].to_list())
        members |= set(self.lines.filter(pl.col("account_type") == "member")["party"].to_list())
        self.members = sorted(members)
        self.names = market.members.select("member", pl.col("name").alias("member_name"))
        self.bid_site = self.placements.select("bid_id", "site_id").join(
            self.sites, on="site_id", how="left")

    def _check_accounts(self) -> None:
        sites = self.lines.filter(pl.col("account_type") == "site")
        unknown = sorted(set(sites["party"].to_list()) - set(self.sites["site_id"].to_list()))
        if unknown:
            raise InputError(
                f"the ledger lines name site(s) {', '.join(unknown)} that the market bundle "
                f"{self.inputs.bundle} does not have (sites.csv) — fix: report the round with "
                "the bundle it was cleared from, or re-run gridbridge clear")

    def member_lines(self) -> pl.DataFrame:
        return self.lines.filter(pl.col("account_type") == "member").with_columns(
            member=pl.col("party"))

    def window_or(self, column: str, bound: datetime | None) -> pl.Expr:
        return pl.col(column).fill_null(pl.lit(bound, dtype=UTC))


# --------------------------------------------------------------------------- member tables


def _counterparties(r: _Round) -> pl.DataFrame:
    """Per member line: the other accounts of its bid and kind on the other side of it.

    "The other side" is the opposite sign (who the member pays, or who pays it); a 0-cent
    line has no side, so every other account of its bid and kind is listed. Several are
    joined with ``;`` in code-point order.
    """
    mine = r.member_lines().select("posting_id", "round_id", "_bid", "kind", "account",
                                   "amount_cents")
    others = r.lines.select("round_id", "_bid", "kind", pl.col("account").alias("_other"),
                            pl.col("amount_cents").alias("_other_cents"))
    pairs = mine.join(others, on=["round_id", "_bid", "kind"]).filter(
        (pl.col("_other") != pl.col("account"))
        & ((pl.col("amount_cents").sign() * pl.col("_other_cents").sign() < 0)
           | (pl.col("amount_cents") == 0)))
    return pairs.group_by("posting_id").agg(
        pl.col("_other").unique().sort().str.join(";").alias("counterparty"))


def member_statements(r: _Round) -> pl.DataFrame:
    """One row per ledger line on a member account (amount: + the member receives)."""
    lines = r.member_lines().join(_counterparties(r), on="posting_id", how="left")
    lines = lines.join(r.bid_site.select("bid_id", "site_id", "site_member"), on="bid_id",
                       how="left")
    return lines.select(
        "round_id", "member", "posting_id", "bid_id", "kind", "counterparty", "site_id",
        "site_member", "amount_cents", _eur(pl.col("amount_cents")).alias("amount_eur"),
        "posted_at_utc",
    ).sort("member", "posting_id")


def member_totals(r: _Round) -> pl.DataFrame:
    """Per member: ledger totals by kind (+ receives), its accepted jobs' use, bid counts."""
    money = r.member_lines().group_by("member").agg(
        *(_sum_kind(k, f"{k}_cents") for k in KINDS),
        pl.col("amount_cents").sum().alias("net_cents"),
        pl.len().alias("ledger_lines"),
    )
    use = r.placements.group_by("member").agg(
        pl.len().alias("bids_accepted"), pl.col("gpu_hours").sum(),
        _micro_sum("energy_kwh"), _micro_sum("emissions_kg"))
    bids = r.inputs.market.bids.select("bid_id", "member")
    rejected = r.inputs.rejected.join(bids, on="bid_id", how="left")
    if rejected["member"].null_count():
        missing = rejected.filter(pl.col("member").is_null())["bid_id"].head(3).to_list()
        raise InputError(f"rejected.csv names bid(s) {', '.join(missing)} that the bundle "
                         f"{r.inputs.bundle} does not have (bids.csv) — fix: report the round "
                         "with the bundle it was cleared from, or re-run gridbridge clear")
    refused = rejected.group_by("member").agg(pl.len().alias("bids_rejected"))
    frame = (pl.DataFrame({"member": r.members}, schema={"member": pl.String})
             .join(r.names, on="member", how="left")
             .join(money, on="member", how="left")
             .join(use, on="member", how="left")
             .join(refused, on="member", how="left"))
    counts = ["ledger_lines", "bids_accepted", "bids_rejected", "gpu_hours"]
    frame = frame.with_columns(
        pl.col(*counts, *(f"{k}_cents" for k in KINDS), "net_cents").fill_null(0)
        .cast(pl.Int64),
        pl.col("energy_kwh", "emissions_kg").fill_null(0.0),
    )
    return frame.select(
        pl.lit(r.round_id).alias("round_id"), "member", "member_name",
        *(_eur(pl.col(f"{k}_cents")).alias(f"{k}_eur") for k in KINDS),
        _eur(pl.col("net_cents")).alias("net_eur"), "net_cents", "ledger_lines",
        "bids_accepted", "bids_rejected", "gpu_hours", "energy_kwh", "emissions_kg",
    ).sort("member")


def cross_border(r: _Round) -> pl.DataFrame:
    """Who paid whom: payer member rows × the paid site's member columns, EUR paid.

    From the lines of :data:`FLOW_KINDS` on site accounts whose bid and kind also have a
    line on the bid's member account (the member → site transfers). A cell is what the row's
    member paid the sites of the column's member, net (a negative energy cost is a credit,
    so a cell can be negative). ``domestic_eur`` is the diagonal, ``cross_border_eur`` the
    rest of the row; ``total_cents`` equals −(the payer's lines of those kinds to sites).
    """
    payers = r.member_lines().filter(pl.col("kind").is_in(FLOW_KINDS)).select(
        "round_id", "_bid", "kind", pl.col("member").alias("payer")).unique()
    flows = (r.lines.filter((pl.col("account_type") == "site")
                            & pl.col("kind").is_in(FLOW_KINDS) & pl.col("bid_id").is_not_null())
             .join(r.placements.select("bid_id", pl.col("member").alias("payer")), on="bid_id")
             .join(payers, on=["round_id", "_bid", "kind", "payer"], how="semi")
             .join(r.sites.select(pl.col("site_id").alias("party"),
                                  pl.col("site_member").alias("receiver")), on="party"))
    matrix = flows.group_by("payer").agg(
        *(pl.col("amount_cents").filter(pl.col("receiver") == m).sum().alias(f"to_{m}")
          for m in r.members),
        pl.col("amount_cents").sum().alias("total_cents"),
        pl.col("amount_cents").filter(pl.col("receiver") == pl.col("payer")).sum()
        .alias("domestic_cents"),
    )
    cells = [f"to_{m}" for m in r.members]
    frame = (pl.DataFrame({"payer": r.members}, schema={"payer": pl.String})
             .join(matrix, on="payer", how="left")
             .with_columns(pl.col(*cells, "total_cents", "domestic_cents").fill_null(0)
                           .cast(pl.Int64)))
    return frame.select(
        pl.lit(r.round_id).alias("round_id"), pl.col("payer").alias("payer_member"),
        *(_eur(pl.col(c)).alias(f"{c}_eur") for c in cells),
        _eur(pl.col("total_cents")).alias("total_eur"),
        _eur(pl.col("domestic_cents")).alias("domestic_eur"),
        _eur(pl.col("total_cents") - pl.col("domestic_cents")).alias("cross_border_eur"),
        "total_cents",
    ).sort("payer_member")


# ----------------------------------------------------------------------------- site tables


def site_statements(r: _Round) -> pl.DataFrame:
    """Per site: ledger revenue by kind (+ received), and the jobs it ran."""
    money = r.lines.filter(pl.col("account_type") == "site").group_by("party").agg(
        *(_sum_kind(k, f"{k}_cents") for k in SITE_KINDS),
        pl.col("amount_cents").sum().alias("revenue_cents"),
    ).rename({"party": "site_id"})
    jobs = r.placements.group_by("site_id").agg(
        pl.len().alias("jobs"), pl.col("gpu_hours").sum(), _micro_sum("energy_kwh"),
        _micro_sum("emissions_kg"))
    cents = [f"{k}_cents" for k in SITE_KINDS]
    frame = (r.sites.join(money, on="site_id", how="left").join(jobs, on="site_id", how="left")
             .with_columns(pl.col(*cents, "revenue_cents", "jobs", "gpu_hours").fill_null(0)
                           .cast(pl.Int64),
                           pl.col("energy_kwh", "emissions_kg").fill_null(0.0)))
    other = pl.col("revenue_cents") - pl.sum_horizontal(*cents)
    return frame.select(
        pl.lit(r.round_id).alias("round_id"), "site_id", "site_member", "zone",
        *(_eur(pl.col(f"{k}_cents")).alias(f"{k}_eur") for k in SITE_KINDS),
        _eur(other).alias("other_eur"),
        _eur(pl.col("revenue_cents")).alias("revenue_eur"), "revenue_cents",
        "jobs", "gpu_hours", "energy_kwh", "emissions_kg",
    ).sort("site_id")


def site_utilisation_daily(r: _Round) -> pl.DataFrame:
    """Per site, GPU type and UTC day: GPU-hours sold / GPU-hours available (capacity.csv).

    A job's hours are ``[start_utc, end_utc)``, each counted on its own UTC day. Available
    hours are those of the round's window; ``utilisation`` is null where none were offered.
    """
    hours = r.placements.select(
        "site_id", "gpu_type", "gpus",
        pl.datetime_ranges(pl.col("start_utc"), pl.col("end_utc") - pl.duration(hours=1),
                           "1h", closed="both").alias("hour"),
    ).explode("hour").drop_nulls("hour")
    sold = hours.group_by("site_id", "gpu_type", pl.col("hour").dt.date().alias("day_utc")).agg(
        pl.col("gpus").sum().alias("gpu_hours_sold"))
    capacity = r.inputs.market.capacity
    if r.start is not None and r.end is not None:
        capacity = capacity.filter(pl.col("hour_utc").is_between(r.start, r.end, closed="left"))
    offered = capacity.group_by(
        "site_id", "gpu_type", pl.col("hour_utc").dt.date().alias("day_utc")).agg(
        pl.col("gpus_available").sum().alias("gpu_hours_available"))
    keys = ["site_id", "gpu_type", "day_utc"]
    frame = offered.join(sold, on=keys, how="full", coalesce=True).with_columns(
        pl.col("gpu_hours_sold", "gpu_hours_available").fill_null(0).cast(pl.Int64))
    return frame.join(r.sites.select("site_id", "site_member"), on="site_id", how="left").select(
        pl.lit(r.round_id).alias("round_id"), "site_id", "site_member", *keys[1:],
        "gpu_hours_sold", "gpu_hours_available",
        pl.when(pl.col("gpu_hours_available") > 0)
        .then((pl.col("gpu_hours_sold") / pl.col("gpu_hours_available")).round(6))
        .otherwise(None).alias("utilisation"),
    ).sort(keys)


# -------------------------------------------------------------------------- round tables


def alliance_summary(r: _Round) -> pl.DataFrame:
    """One typed row: the round, summary.json's figures and the ledger's own totals.

    Clearing figures (welfare, payments, uplift, congestion revenue) are summary.json's,
    unrounded; ledger figures (``*_cents`` and the EUR next to them) are sums of lines.
    ``emissions_reduction_vs_*_kg`` = baseline − optimum (positive: the clearing emitted
    less); ``kg_per_work_h_reduction_vs_*`` is the same relative to the baseline's
    kg per work-hour, a fraction (0.1 = 10 %).
    """
    s = r.summary
    lines = r.lines
    fund = lines.filter(pl.col("account") == CARBON_FUND)
    inflow = int(fund.filter(pl.col("kind") == "carbon_fee")["amount_cents"].sum())
    balance = int(fund["amount_cents"].sum())
    members = int(lines.filter(pl.col("account_type") == "member")["amount_cents"].sum())
    sites = int(lines.filter(pl.col("account_type") == "site")["amount_cents"].sum())
    row: dict[str, object] = {
        "round_id": r.round_id, "window_start_utc": r.start, "window_end_utc": r.end,
        "status": s.get("status") if isinstance(s.get("status"), str) else None,
        "gap": _number(s, "gap"),
        "carbon_price_eur_per_t": _number(s, "carbon_price_eur_per_t"),
        "carbon_signal": s.get("carbon_signal") if isinstance(s.get("carbon_signal"), str)
        else None,
        "bids": _number(s, "bids"), "accepted": _number(s, "accepted"),
        "rejected": _number(s, "rejected"),
        **{k: _number(s, k) for k in ("welfare_eur", "surplus_eur", "gpu_hours", "work_h",
                                      "energy_kwh", "emissions_kg", "kg_per_work_h")},
    }
    for name, short in (("carbon_blind_greedy", "carbon_blind"),
                        ("carbon_aware_greedy", "carbon_aware")):
        kg, per = (_number(s, "baselines", name, k) for k in ("emissions_kg", "kg_per_work_h"))
        row[f"{short}_emissions_kg"] = kg
        row[f"{short}_kg_per_work_h"] = per
        opt_kg, opt_per = _number(s, "emissions_kg"), _number(s, "kg_per_work_h")
        row[f"emissions_reduction_vs_{short}_kg"] = (
            None if kg is None or opt_kg is None else round(kg - opt_kg, 6))
        row[f"kg_per_work_h_reduction_vs_{short}"] = (
            None if not per or opt_per is None else round((per - opt_per) / per, 6))
    row |= {
        **{k: _number(s, "pricing", k) for k in ("payments_eur", "uplift_eur",
                                                 "congestion_revenue_eur", "carbon_fees_eur")},
        "paradoxically_rejected": _number(s, "pricing", "paradoxically_rejected"),
        "paradoxically_rejected_value_eur": _number(s, "pricing",
                                                    "paradoxically_rejected_value_eur"),
        "carbon_fund_inflow_eur": inflow / 100, "carbon_fund_inflow_cents": inflow,
        "carbon_fund_balance_eur": balance / 100, "carbon_fund_balance_cents": balance,
        "members_paid_eur": -members / 100, "members_paid_cents": -members,
        "sites_received_eur": sites / 100, "sites_received_cents": sites,
        "ledger_lines": lines.height, "ledger_sum_cents": int(lines["amount_cents"].sum()),
    }
    ints = {"bids", "accepted", "rejected", "paradoxically_rejected", "ledger_lines",
            "ledger_sum_cents", "carbon_fund_inflow_cents", "carbon_fund_balance_cents",
            "members_paid_cents", "sites_received_cents"}
    texts = {"round_id", "status", "carbon_signal"}
    schema: dict[str, pl.DataType] = {
        k: (pl.String() if k in texts else UTC if k.endswith("_utc")
            else pl.Int64() if k in ints else pl.Float64()) for k in row}
    values = {k: (None if v is None else int(v)) if k in ints else v for k, v in row.items()}
    return pl.DataFrame([values], schema=schema, orient="row")


def _intensity_sources(r: _Round) -> pl.DataFrame:
    """Per zone, where its carbon intensity came from: the grid's source column if it has
    one (values in code-point order, ``; ``-joined), else the bundle path."""
    grid = r.inputs.market.grid
    signal = str(r.summary.get("carbon_signal") or r.inputs.market.config.carbon_signal)
    column = next((c.format(signal=signal) for c in SOURCE_COLUMNS
                   if c.format(signal=signal) in grid.columns), None)
    if column is None:
        return pl.DataFrame(schema={"zone": pl.String, "intensity_source": pl.String})
    return grid.select("zone", pl.col(column).cast(pl.String)).drop_nulls().group_by("zone").agg(
        pl.col(column).unique().sort().str.join("; ").alias("intensity_source"))


def usage_records(r: _Round) -> pl.DataFrame:
    """One usage record per placement (APEL / OGF usage-record style, GPU jobs).

    ``wall_duration_s`` is the job's wall time in seconds (APEL's WallDuration);
    ``gpu_hours`` = gpus × hours; ``carbon_signal`` names the intensity the emissions are
    attributed with (location-based ``direct`` or ``lifecycle``); ``intensity_source`` is
    where that intensity came from.
    """
    signal = str(r.summary.get("carbon_signal") or r.inputs.market.config.carbon_signal)
    frame = (r.placements.join(r.sites.select("site_id", "zone"), on="site_id", how="left")
             .join(_intensity_sources(r), on="zone", how="left"))
    return frame.select(
        pl.lit(r.round_id).alias("round_id"),
        pl.concat_str(pl.lit(r.round_id), pl.lit(":"), pl.col("bid_id")).alias("record_id"),
        "site_id", "zone", "member", "bid_id", "start_utc", "end_utc",
        ((pl.col("end_utc") - pl.col("start_utc")).dt.total_seconds()).cast(pl.Int64)
        .alias("wall_duration_s"),
        "gpu_type", "gpus", "gpu_hours", "energy_kwh", "emissions_kg",
        pl.lit(signal).alias("carbon_signal"),
        pl.col("intensity_source").fill_null(pl.lit(r.inputs.bundle)),
    ).sort("bid_id")


def focus_costs(r: _Round) -> pl.DataFrame:
    """FinOps FOCUS-style cost rows, one per ledger line on a member account.

    ``BilledCost`` = ``EffectiveCost`` = −amount (positive: the member pays; no discounts
    or commitments exist here). Columns FOCUS does not define carry the ``x_`` prefix, as
    FOCUS asks; ``x_AmountCents`` is the ledger amount itself (+ the member receives).
    """
    lines = (r.member_lines().join(_counterparties(r), on="posting_id", how="left")
             .join(r.placements.select("bid_id", "site_id", "gpu_type", "start_utc", "end_utc",
                                       "gpu_hours"), on="bid_id", how="left")
             .join(r.sites.select("site_id", "zone"), on="site_id", how="left")
             .join(r.names, on="member", how="left"))
    billed = _eur(-pl.col("amount_cents"))
    usage = pl.col("kind").is_in(USAGE_KINDS)
    on_bid = pl.col("bid_id").is_not_null()
    return lines.select(
        billed.alias("BilledCost"), billed.alias("EffectiveCost"),
        pl.lit("EUR").alias("BillingCurrency"),
        pl.lit(r.start, dtype=UTC).alias("BillingPeriodStart"),
        pl.lit(r.end, dtype=UTC).alias("BillingPeriodEnd"),
        r.window_or("start_utc", r.start).alias("ChargePeriodStart"),
        r.window_or("end_utc", r.end).alias("ChargePeriodEnd"),
        pl.col("kind").replace_strict(CHARGE_CATEGORY, return_dtype=pl.String)
        .alias("ChargeCategory"),
        pl.when(pl.col("kind") == "correction").then(pl.lit("Correction"))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("ChargeClass"),
        pl.when(on_bid)
        .then(pl.format("{} for bid {} at {}", "kind", "bid_id", "site_id"))
        .otherwise(pl.format("{} (round {})", "kind", "round_id")).alias("ChargeDescription"),
        pl.when(usage).then(pl.col("gpu_hours").cast(pl.Float64)).otherwise(None)
        .alias("ConsumedQuantity"),
        pl.when(usage).then(pl.lit("GPU-hour")).otherwise(pl.lit(None, dtype=pl.String))
        .alias("ConsumedUnit"),
        pl.col("site_id").fill_null(pl.lit(ALLIANCE_PROVIDER)).alias("ProviderName"),
        pl.col("zone").alias("RegionId"),
        pl.col("bid_id").alias("ResourceId"),
        pl.when(on_bid).then(pl.lit("GPU training job")).otherwise(pl.lit(None, dtype=pl.String))
        .alias("ResourceType"),
        pl.col("gpu_type").alias("SkuId"),
        pl.col("member").alias("SubAccountId"),
        pl.col("member_name").alias("SubAccountName"),
        pl.col("posting_id").alias("x_PostingId"),
        pl.col("round_id").alias("x_RoundId"),
        pl.col("kind").alias("x_Kind"),
        pl.col("counterparty").alias("x_Counterparty"),
        pl.col("amount_cents").alias("x_AmountCents"),
    ).sort("x_PostingId")


def metering(r: _Round) -> pl.DataFrame:
    """Metered true-ups (``gridbridge trueup``): per batch and placement, the forecast, the
    actual and the difference of kWh, kg CO2eq, energy cost and carbon fee (EUR); no rows
    until a batch is posted. Their ledger lines are the ``correction`` lines."""
    if r.inputs.metering is not None:
        return r.inputs.metering
    return read_records(r.inputs.clearing_dir)


def ledger(r: _Round) -> pl.DataFrame:
    """The ledger lines as they are (ledger.csv's columns), sorted by posting_id."""
    return r.inputs.postings.select(list(POSTING_SCHEMA)).sort("posting_id")


_BUILDERS = {"alliance_summary": alliance_summary, "member_totals": member_totals,
             "member_statements": member_statements, "cross_border": cross_border,
             "site_statements": site_statements,
             "site_utilisation_daily": site_utilisation_daily, "usage_records": usage_records,
             "focus_costs": focus_costs, "metering": metering, "ledger": ledger}


def build_reports_from(inputs: RoundInputs,
                       tables: Iterable[str] = REPORT_TABLES) -> dict[str, pl.DataFrame]:
    """The named report tables of an already loaded round (see :func:`build_reports`)."""
    shared = _Round(inputs)
    return {name: _BUILDERS[name](shared) for name in tables}


def build_reports(clearing_dir: Path,
                  postings: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """Every settlement report of the round cleared into ``clearing_dir``, by table name.

    ``postings`` are the round's ledger lines (ledger.csv's columns), e.g. read from the
    ledger database; by default ``clearing_dir/ledger.csv``. Read-only; the same inputs
    always give equal tables. Raises :class:`~gridbridge.errors.NotFoundError` /
    :class:`~gridbridge.errors.InputError` (see :func:`gridbridge.reports.inputs.load_round`).
    """
    return build_reports_from(load_round(Path(clearing_dir), postings))

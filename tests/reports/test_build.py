"""Every report reconciles with the ledger lines it is built from, to the cent."""

from __future__ import annotations

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from gridbridge.bundle import read_bundle
from gridbridge.errors import InputError
from gridbridge.ledger import KINDS, empty_postings
from gridbridge.reports import REPORT_TABLES, build_reports
from gridbridge.reports.build import CHARGE_CATEGORY, FLOW_KINDS
from tests.reports.conftest import ledger_of


def cents(eur: pl.Series) -> list[int]:
    """EUR figures of a report back to integer cents (they are exact 2-decimal numbers)."""
    return [round(v * 100) for v in eur.to_list()]


def ledger_sums(lines: pl.DataFrame, prefix: str) -> dict[tuple[str, str], int]:
    """Ledger cents by (party, kind) for the accounts ``prefix:...``."""
    frame = (lines.filter(pl.col("account").str.starts_with(f"{prefix}:"))
             .with_columns(party=pl.col("account").str.slice(len(prefix) + 1))
             .group_by("party", "kind").agg(pl.col("amount_cents").sum()))
    return {(p, k): int(a) for p, k, a in frame.iter_rows()}


@pytest.fixture(scope="module")
def lines(cleared) -> pl.DataFrame:
    return ledger_of(cleared)


@pytest.fixture(scope="module")
def extra_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """The round's lines plus a correction, a bid uplift and the round-level uplift split
    (the shapes gridbridge.settlement posts), so every kind and a round-level line occur."""
    first = lines.filter(pl.col("kind") == "energy").row(0, named=True)
    bid, round_id = first["bid_id"], first["round_id"]
    member = lines.filter((pl.col("bid_id") == bid) & pl.col("account").str.starts_with(
        "member:"))["account"][0]
    site = lines.filter((pl.col("bid_id") == bid) & pl.col("account").str.starts_with(
        "site:"))["account"][0]
    rows = [
        (bid, member, "correction", -150), (bid, site, "correction", 150),
        (bid, "alliance:uplift", "uplift", -500), (bid, member, "uplift", 500),
        (None, "alliance:carbon-fund", "uplift", -200), (None, "alliance:uplift", "uplift", 200),
        (None, "alliance:uplift", "uplift", 300), (None, "member:CA", "uplift", -100),
        (None, "member:DE", "uplift", -100), (None, "member:GB", "uplift", -101),
        (None, "alliance:rounding", "rounding", 1),
    ]
    extra = pl.DataFrame({
        "posting_id": [f"{round_id}:9{i:05d}" for i in range(len(rows))],
        "round_id": [round_id] * len(rows),
        "bid_id": [r[0] for r in rows], "account": [r[1] for r in rows],
        "kind": [r[2] for r in rows], "amount_cents": [r[3] for r in rows],
        "posted_at_utc": [first["posted_at_utc"]] * len(rows),
    }, schema=lines.schema)
    return pl.concat([extra, lines])  # out of order on purpose: reports sort


@pytest.fixture(scope="module")
def reports(cleared) -> dict[str, pl.DataFrame]:
    return build_reports(cleared)


@pytest.fixture(scope="module")
def extra_reports(cleared, extra_lines: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return build_reports(cleared, extra_lines)


@pytest.fixture(params=["ledger.csv", "extra"])
def case(request: pytest.FixtureRequest, lines, extra_lines, reports, extra_reports
         ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    return (lines, reports) if request.param == "ledger.csv" else (extra_lines, extra_reports)


def test_every_table_is_built_and_sorted(reports: dict[str, pl.DataFrame]) -> None:
    assert tuple(reports) == REPORT_TABLES
    keys = {"member_statements": ["member", "posting_id"], "member_totals": ["member"],
            "cross_border": ["payer_member"], "site_statements": ["site_id"],
            "site_utilisation_daily": ["site_id", "gpu_type", "day_utc"],
            "usage_records": ["bid_id"], "focus_costs": ["x_PostingId"],
            "ledger": ["posting_id"]}
    for name, key in keys.items():
        frame = reports[name]
        assert frame.height > 0, name
        assert_frame_equal(frame, frame.sort(key), check_exact=True)
        assert not frame.select(key).is_duplicated().any(), name


def test_ledger_table_is_the_ledger_and_sums_to_zero(cleared, lines, reports) -> None:
    assert_frame_equal(reports["ledger"], lines.sort("posting_id"))
    assert int(reports["ledger"]["amount_cents"].sum()) == 0
    summary = reports["alliance_summary"].row(0, named=True)
    assert summary["ledger_sum_cents"] == 0
    assert summary["ledger_lines"] == lines.height


def test_passing_the_ledger_lines_gives_the_same_reports(cleared, lines, reports) -> None:
    again = build_reports(cleared, lines.reverse())
    for name in REPORT_TABLES:
        assert_frame_equal(again[name], reports[name], check_exact=True)


def test_member_totals_equal_ledger_totals(case, cleared) -> None:
    lines, reports = case
    totals = reports["member_totals"]
    by_kind = ledger_sums(lines, "member")
    for kind in KINDS:
        got = dict(zip(totals["member"], cents(totals[f"{kind}_eur"]), strict=True))
        for member in totals["member"]:
            assert got[member] == by_kind.get((member, kind), 0), (member, kind)
    net = (lines.filter(pl.col("account").str.starts_with("member:"))
           .group_by("account").agg(pl.col("amount_cents").sum()))
    expected = {a.removeprefix("member:"): int(c) for a, c in net.iter_rows()}
    for row in totals.iter_rows(named=True):
        assert row["net_cents"] == expected.get(row["member"], 0)
        assert round(row["net_eur"] * 100) == row["net_cents"]
    # The statements are those same lines.
    statements = reports["member_statements"]
    assert statements.height == lines.filter(pl.col("account").str.starts_with("member:")).height
    per = statements.group_by("member").agg(pl.col("amount_cents").sum())
    assert {m: int(c) for m, c in per.iter_rows()} == {
        m: c for m, c in expected.items()}


def test_member_use_and_bid_counts(cleared, reports) -> None:
    totals = reports["member_totals"]
    placements = pl.read_csv(cleared / "placements.csv")
    summary = orjson.loads((cleared / "summary.json").read_bytes())
    bids = read_bundle(cleared / summary["bundle"]).bids
    assert int(totals["bids_accepted"].sum()) == placements.height == summary["accepted"]
    assert int(totals["bids_rejected"].sum()) == summary["rejected"]
    submitted = dict(bids.group_by("member").len().iter_rows())
    for row in totals.iter_rows(named=True):
        assert row["bids_accepted"] + row["bids_rejected"] == submitted.get(row["member"], 0)
    assert int(totals["gpu_hours"].sum()) == summary["gpu_hours"]
    assert totals["energy_kwh"].sum() == pytest.approx(summary["energy_kwh"], abs=1e-3)
    assert totals["emissions_kg"].sum() == pytest.approx(summary["emissions_kg"], abs=1e-3)


def test_site_statements_equal_ledger_totals(case, reports) -> None:
    lines, reports = case
    sites = reports["site_statements"]
    by_kind = ledger_sums(lines, "site")
    for kind in ("energy", "ask", "capacity", "correction"):
        got = dict(zip(sites["site_id"], cents(sites[f"{kind}_eur"]), strict=True))
        for site in sites["site_id"]:
            assert got[site] == by_kind.get((site, kind), 0), (site, kind)
    for row in sites.iter_rows(named=True):
        revenue = sum(v for (s, _), v in by_kind.items() if s == row["site_id"])
        assert row["revenue_cents"] == revenue
        parts = [row[f"{k}_eur"] for k in ("energy", "ask", "capacity", "correction", "other")]
        assert sum(round(p * 100) for p in parts) == revenue
    assert int(sites["revenue_cents"].sum()) == int(
        lines.filter(pl.col("account").str.starts_with("site:"))["amount_cents"].sum())


def test_cross_border_equals_member_to_site_payments(case, cleared) -> None:
    lines, reports = case
    matrix = reports["cross_border"]
    summary = orjson.loads((cleared / "summary.json").read_bytes())
    site_member = dict(read_bundle(cleared / summary["bundle"]).sites
                       .select("site_id", "member").iter_rows())
    bid_member = dict(pl.read_csv(cleared / "placements.csv").select("bid_id", "member")
                      .iter_rows())
    paid: dict[tuple[str, str], int] = {}
    for row in lines.filter(pl.col("account").str.starts_with("site:")
                            & pl.col("kind").is_in(FLOW_KINDS)).iter_rows(named=True):
        key = (bid_member[row["bid_id"]], site_member[row["account"].removeprefix("site:")])
        paid[key] = paid.get(key, 0) + row["amount_cents"]
    members = matrix["payer_member"].to_list()
    for row in matrix.iter_rows(named=True):
        payer = row["payer_member"]
        cells = {m: round(row[f"to_{m}_eur"] * 100) for m in members}
        assert cells == {m: paid.get((payer, m), 0) for m in members}
        assert sum(cells.values()) == row["total_cents"]
        assert round(row["domestic_eur"] * 100) == cells[payer]
        assert round(row["cross_border_eur"] * 100) == row["total_cents"] - cells[payer]
        # What the member paid for its jobs' energy, asks, capacity and corrections.
        own = lines.filter((pl.col("account") == f"member:{payer}")
                           & pl.col("kind").is_in(FLOW_KINDS))
        assert row["total_cents"] == -int(own["amount_cents"].sum())


def test_alliance_summary_equals_ledger_and_summary(case, cleared) -> None:
    lines, reports = case
    row = reports["alliance_summary"].row(0, named=True)
    summary = orjson.loads((cleared / "summary.json").read_bytes())
    fund = lines.filter(pl.col("account") == "alliance:carbon-fund")
    assert row["carbon_fund_inflow_cents"] == int(
        fund.filter(pl.col("kind") == "carbon_fee")["amount_cents"].sum())
    assert row["carbon_fund_balance_cents"] == int(fund["amount_cents"].sum())
    assert round(row["carbon_fund_balance_eur"] * 100) == row["carbon_fund_balance_cents"]
    members = lines.filter(pl.col("account").str.starts_with("member:"))
    assert row["members_paid_cents"] == -int(members["amount_cents"].sum())
    assert row["ledger_sum_cents"] == 0 and row["ledger_lines"] == lines.height
    assert row["round_id"] == summary["round_id"]
    assert row["carbon_signal"] == summary["carbon_signal"]
    assert row["carbon_price_eur_per_t"] == summary["carbon_price_eur_per_t"]
    assert row["emissions_kg"] == summary["emissions_kg"]
    blind = summary["baselines"]["carbon_blind_greedy"]
    assert row["carbon_blind_emissions_kg"] == blind["emissions_kg"]
    assert row["emissions_reduction_vs_carbon_blind_kg"] == pytest.approx(
        blind["emissions_kg"] - summary["emissions_kg"], abs=1e-6)
    assert row["payments_eur"] == summary["pricing"]["payments_eur"]
    assert row["paradoxically_rejected"] == summary["pricing"]["paradoxically_rejected"]
    assert f"{row['window_start_utc']:%Y-%m-%dT%H:%MZ}" == summary["window_start_utc"]


def test_focus_costs_are_the_member_lines_billed(case, cleared) -> None:
    lines, reports = case
    focus = reports["focus_costs"]
    members = lines.filter(pl.col("account").str.starts_with("member:"))
    assert focus.height == members.height
    assert sum(cents(focus["BilledCost"])) == -int(members["amount_cents"].sum())
    assert (focus["BilledCost"] == focus["EffectiveCost"]).all()
    assert (focus["x_AmountCents"] == -pl.Series(cents(focus["BilledCost"]))).all()
    assert set(focus["BillingCurrency"]) == {"EUR"}
    for row in focus.iter_rows(named=True):
        assert row["ChargeCategory"] == CHARGE_CATEGORY[row["x_Kind"]]
        assert row["ChargeClass"] == ("Correction" if row["x_Kind"] == "correction" else None)
        usage = row["x_Kind"] in ("energy", "ask", "capacity")
        assert (row["ConsumedUnit"] == "GPU-hour") is usage
        assert (row["ConsumedQuantity"] is not None) is usage
        if row["ResourceId"] is None:  # round-level: the round's window, the alliance
            assert row["ChargePeriodStart"] == row["BillingPeriodStart"]
            assert row["ChargePeriodEnd"] == row["BillingPeriodEnd"]
            assert row["ProviderName"] == "alliance"
        else:
            assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]
            assert row["ProviderName"] != "alliance"


def test_round_level_and_correction_lines_are_reported(extra_reports) -> None:
    totals = {r["member"]: r for r in extra_reports["member_totals"].iter_rows(named=True)}
    assert totals["CA"]["uplift_eur"] <= -1.0  # its share of the round's uplift
    assert sum(r["correction_eur"] for r in totals.values()) == -1.5
    statements = extra_reports["member_statements"]
    round_level = statements.filter(pl.col("bid_id").is_null())
    assert set(round_level["member"]) == {"CA", "DE", "GB"}
    assert set(round_level["counterparty"]) == {"alliance:uplift"}
    assert round_level["site_id"].null_count() == round_level.height
    on_bid = statements.filter(pl.col("bid_id").is_not_null() & (pl.col("kind") != "uplift"))
    assert on_bid["counterparty"].null_count() == 0
    carbon = statements.filter(pl.col("kind") == "carbon_fee")
    assert set(carbon["counterparty"]) == {"alliance:carbon-fund"}
    energy = statements.filter(pl.col("kind") == "energy")
    assert energy["counterparty"].to_list() == [f"site:{s}" for s in energy["site_id"]]


def test_usage_records_one_per_placement(cleared, reports) -> None:
    usage = reports["usage_records"]
    placements = pl.read_csv(cleared / "placements.csv")
    summary = orjson.loads((cleared / "summary.json").read_bytes())
    assert usage["bid_id"].to_list() == sorted(placements["bid_id"].to_list())
    assert int(usage["gpu_hours"].sum()) == summary["gpu_hours"]
    assert (usage["wall_duration_s"] * usage["gpus"] == usage["gpu_hours"] * 3600).all()
    assert set(usage["carbon_signal"]) == {summary["carbon_signal"]}
    # The bundle's grid has no source column, so the source is the bundle itself.
    assert set(usage["intensity_source"]) == {summary["bundle"]}


def test_utilisation_counts_every_sold_hour(cleared, reports) -> None:
    daily = reports["site_utilisation_daily"]
    assert int(daily["gpu_hours_sold"].sum()) == int(reports["usage_records"]["gpu_hours"].sum())
    assert (daily["gpu_hours_sold"] <= daily["gpu_hours_available"]).all()
    assert daily["utilisation"].drop_nulls().is_between(0, 1).all()
    sold = reports["site_statements"].filter(pl.col("gpu_hours") > 0)
    per_site = dict(daily.group_by("site_id").agg(pl.col("gpu_hours_sold").sum()).iter_rows())
    for site, hours in sold.select("site_id", "gpu_hours").iter_rows():
        assert per_site[site] == hours


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.with_columns(round_id=pl.lit("R-other")), "'R-other', not the round"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 0)
                              .then(pl.col("amount_cents") + 1)
                              .otherwise(pl.col("amount_cents")).alias("amount_cents")),
     "not 0"),
    (lambda f: f.with_columns(kind=pl.lit("bonus")), "'bonus' is not a kind"),
    (lambda f: f.with_columns(account=pl.lit("bank:X")), "'bank:X' is not a ledger account"),
    (lambda f: f.drop("amount_cents"), r"missing column\(s\): amount_cents"),
    (lambda f: f.with_columns(amount_cents=pl.col("amount_cents") + 0.5),
     "is not a whole number of cents"),
    (lambda f: f.with_columns(bid_id=pl.lit("B-NOT-PLACED")), "not in this clearing"),
    (lambda f: pl.concat([f, f.head(1)]), "appears more than once"),
])
def test_inconsistent_lines_are_refused(cleared, lines, change, message) -> None:
    with pytest.raises(InputError, match=message):
        build_reports(cleared, change(lines))


def test_a_round_without_lines_still_reports(cleared) -> None:
    reports = build_reports(cleared, empty_postings())
    assert reports["ledger"].height == reports["member_statements"].height == 0
    assert reports["focus_costs"].height == 0
    assert (reports["member_totals"]["net_cents"] == 0).all()
    assert (reports["cross_border"]["total_cents"] == 0).all()
    assert reports["usage_records"].height > 0  # the jobs ran, whatever was posted

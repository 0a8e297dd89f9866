"""The independent clearing checker on hand-solved clearings, one test per broken rule.

The hand market (6 hours from T0, carbon price 100 EUR/t, it_kw 1.0 everywhere):

* site KR-1, zone KR, jurisdiction KR, PUE 1.0, no adder, ask 1 EUR/GPU-h, H100 8 GPUs and
  A100 4 GPUs every hour; KR intensity 500, 400, 300, 300, 400, 500 g/kWh, price 100 EUR/MWh;
* site CA-1, zone CA-ON, jurisdiction CA, PUE 1.5, adder 10 EUR/MWh, ask 2 EUR/GPU-h, H100
  8, 8, 4, 8, 8, 8 GPUs; CA-ON intensity 100 g/kWh and price 50 EUR/MWh flat.

Bids (value EUR): B1 H100:2;A100:3, 4 GPUs, [0, 4), 50, anywhere; B2 H100:1;A100:3, 2 GPUs,
[-2, 8) (wider than the window), 30, 'KR; CA'; B3 H100:2, 4 GPUs, [2, 6), 40, CA only; B4
H100:3, 8 GPUs, [0, 3), 5, anywhere.

The good clearing places B1 on KR-1 H100 at hour 1, B2 on KR-1 A100 at hour 3, B3 on CA-1
H100 at hour 2 (filling hour 2's 4 GPUs) and rejects B4. Figures worked out by hand beside
each row of :func:`good_rows`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from gridbridge.bundle import read_bundle
from optim.check import MAX_PROBLEMS, TOTAL_KEYS, CheckReport, check_clearing, close_money
from optim.errors import CheckFailedError
from optim.market import Market
from tests.conftest import W27
from tests.optim.kit import Bid, Kit, Site, at

PLACEMENT_SCHEMA = {
    "bid_id": pl.String(),
    "site_id": pl.String(),
    "gpu_type": pl.String(),
    "start_utc": pl.Datetime("us", "UTC"),
    "end_utc": pl.Datetime("us", "UTC"),
    "gpus": pl.Int64(),
    "energy_kwh": pl.Float64(),
    "emissions_kg": pl.Float64(),
    "energy_cost_eur": pl.Float64(),
}


def hand_kit(ca_h100: tuple[int, ...] = (8, 8, 4, 8, 8, 8)) -> Kit:
    return Kit(
        hours=6,
        sites=[
            Site("KR-1", "KR", "KR", {"H100": 8, "A100": 4}, ask=1.0),
            Site("CA-1", "CA-ON", "CA", {"H100": list(ca_h100)}, ask=2.0, pue=1.5, adder=10.0),
        ],
        bids=[
            Bid("B1", "H100:2;A100:3", 4, 0, 4, 50.0),
            Bid("B2", "H100:1;A100:3", 2, -2, 8, 30.0, allowed="KR; CA"),
            Bid("B3", "H100:2", 4, 2, 6, 40.0, allowed="CA"),
            Bid("B4", "H100:3", 8, 0, 3, 5.0),
        ],
        intensity={"KR": [500, 400, 300, 300, 400, 500], "CA-ON": [100] * 6},
        price={"KR": [100] * 6, "CA-ON": [50] * 6},
        carbon_price=100.0,
    )


@pytest.fixture
def market() -> Market:
    return hand_kit().market()


def good_rows() -> list[dict[str, object]]:
    return [
        # B1, 4 H100 on KR-1, hours 1-2: 4 kWh/h -> 8 kWh; 4 x (400 + 300) / 1000 = 2.8 kg;
        # 8 x 100 / 1000 = 0.8 EUR energy; ask 4 x 1 x 2 = 8 EUR; fee 100 x 2.8 / 1000 = 0.28.
        row("B1", "KR-1", "H100", 1, 3, 4, 8.0, 2.8, 0.8, ask=8.0, fee=0.28, value=50.0),
        # B2, 2 A100 on KR-1, hours 3-5: 6 kWh; 2 x (300 + 400 + 500) / 1000 = 2.4 kg;
        # 0.6 EUR energy; ask 2 x 1 x 3 = 6 EUR; fee 0.24 EUR.
        row("B2", "KR-1", "A100", 3, 6, 2, 6.0, 2.4, 0.6, ask=6.0, fee=0.24, value=30.0),
        # B3, 4 H100 on CA-1 (PUE 1.5), hours 2-3: 6 kWh/h -> 12 kWh; 12 x 100 / 1000 = 1.2 kg;
        # 12 x (50 + 10) / 1000 = 0.72 EUR energy; ask 4 x 2 x 2 = 16 EUR; fee 0.12 EUR.
        row("B3", "CA-1", "H100", 2, 4, 4, 12.0, 1.2, 0.72, ask=16.0, fee=0.12, value=40.0),
    ]


#: The good clearing's totals. gpu_hours 4x2 + 2x3 + 4x2 = 22; work_h uses each bid's
#: shortest option: B1 4 x 2, B2 2 x 1 (though it ran 3 h on A100), B3 4 x 2 = 18.
HAND_TOTALS: dict[str, float] = {
    "accepted": 3,
    "rejected": 1,
    "gpu_hours": 22.0,
    "work_h": 18.0,
    "energy_kwh": 26.0,  # 8 + 6 + 12
    "emissions_kg": 6.4,  # 2.8 + 2.4 + 1.2
    "energy_cost_eur": 2.12,  # 0.8 + 0.6 + 0.72
    "ask_eur": 30.0,  # 8 + 6 + 16
    "carbon_fee_eur": 0.64,  # 100 EUR/t x 6.4 kg / 1000
    "value_eur": 120.0,  # 50 + 30 + 40
    "surplus_eur": 87.88,  # 120 - 2.12 - 30
    "welfare_eur": 87.24,  # 87.88 - 0.64
    "kg_per_work_h": 6.4 / 18,
    "kg_per_gpu_hour": 6.4 / 22,
}


def row(
    bid: str, site: str, gpu_type: str, start: int, end: int, gpus: int, kwh: float,
    kg: float, cost: float, *, ask: float, fee: float, value: float,
) -> dict[str, object]:
    return {
        "bid_id": bid, "site_id": site, "gpu_type": gpu_type, "start_utc": at(start),
        "end_utc": at(end), "gpus": gpus, "energy_kwh": kwh, "emissions_kg": kg,
        "energy_cost_eur": cost, "ask_eur": ask, "carbon_fee_eur": fee, "value_eur": value,
    }


def placements(rows: list[dict[str, object]], *, extra: bool = False) -> pl.DataFrame:
    """The rows as a placements frame; ``extra`` keeps ask/fee/value and adds payment_eur."""
    schema = dict(PLACEMENT_SCHEMA)
    if extra:
        schema |= {"ask_eur": pl.Float64(), "carbon_fee_eur": pl.Float64(),
                   "value_eur": pl.Float64()}
    frame = pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema)
    if extra:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("payment_eur"))
    return frame


def rejected(*bids: str) -> pl.DataFrame:
    return pl.DataFrame({"bid_id": list(bids), "reason": ["no_capacity"] * len(bids)},
                        schema={"bid_id": pl.String(), "reason": pl.String()})


def good_summary() -> dict[str, object]:
    return {
        "status": "optimal",
        "carbon_price_eur_per_t": 100.0,
        "emissions_cap_kg": None,
        **HAND_TOTALS,
        "objective_eur": 87.24,
        "bound_eur": 87.25,
    }


def check(market: Market, rows: list[dict[str, object]] | None = None,
          rejects: tuple[str, ...] = ("B4",), summary: dict[str, object] | None = None,
          ) -> CheckReport:
    return check_clearing(market, placements(good_rows() if rows is None else rows),
                          rejected(*rejects), summary)


def only_problem(report: CheckReport) -> str:
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


def has(report: CheckReport, *words: str) -> str:
    """The one problem that contains every word, failing if none does."""
    for problem in report.problems:
        if all(w in problem for w in words):
            return problem
    raise AssertionError(f"no problem names {words}: {report.problems}")


def with_row(bid: str, **changes: object) -> list[dict[str, object]]:
    rows = good_rows()
    for r in rows:
        if r["bid_id"] == bid:
            r.update(changes)
    return rows


# --- a correct clearing ------------------------------------------------------------------


def test_good_clearing_passes_with_the_hand_totals(market: Market) -> None:
    report = check_clearing(market, placements(good_rows(), extra=True), rejected("B4"),
                            good_summary())
    assert report.ok, report.problems
    assert report.problems == ()
    assert list(report.totals) == list(TOTAL_KEYS)
    for key, value in HAND_TOTALS.items():
        assert report.totals[key] == pytest.approx(value, abs=1e-9), key
    report.raise_if_failed()  # no exception


def test_total_keys_are_in_summary_order() -> None:
    assert TOTAL_KEYS == (
        "accepted", "rejected", "gpu_hours", "work_h", "energy_kwh", "emissions_kg",
        "energy_cost_eur", "ask_eur", "carbon_fee_eur", "value_eur", "surplus_eur",
        "welfare_eur", "kg_per_work_h", "kg_per_gpu_hour",
    )


def test_all_rejected_has_zero_totals(market: Market) -> None:
    report = check(market, [], ("B1", "B2", "B3", "B4"))
    assert report.ok, report.problems
    assert report.totals["rejected"] == 4 and report.totals["accepted"] == 0
    # No work: the per-hour ratios are 0, not a division error.
    assert report.totals["kg_per_work_h"] == 0.0 and report.totals["kg_per_gpu_hour"] == 0.0


def test_summary_carbon_price_overrides_the_market(market: Market) -> None:
    # At 50 EUR/t the fees halve: 0.14, 0.12, 0.06 -> 0.32; welfare 87.88 - 0.32 = 87.56.
    rows = good_rows()
    for r, fee in zip(rows, (0.14, 0.12, 0.06), strict=True):
        r["carbon_fee_eur"] = fee
    summary = good_summary() | {"carbon_price_eur_per_t": 50.0, "carbon_fee_eur": 0.32,
                                "welfare_eur": 87.56, "objective_eur": 87.56,
                                "bound_eur": 87.56}
    report = check_clearing(market, placements(rows, extra=True), rejected("B4"), summary)
    assert report.ok, report.problems
    assert report.totals["welfare_eur"] == pytest.approx(87.56)


def test_money_rounded_to_the_cent_passes(market: Market) -> None:
    # 0.724 EUR is 0.72 EUR within half a cent; 0.73 EUR is not.
    assert check(market, with_row("B3", energy_cost_eur=0.724)).ok
    problem = only_problem(check(market, with_row("B3", energy_cost_eur=0.73)))
    assert "bid B3" in problem and "energy_cost_eur" in problem and "0.72" in problem
    assert close_money(0.72, 0.724) and not close_money(0.72, 0.73)


def test_times_as_iso_text_are_read_as_utc(market: Market) -> None:
    frame = placements(good_rows()).with_columns(
        pl.col(c).dt.strftime("%Y-%m-%dT%H:%MZ") for c in ("start_utc", "end_utc")
    )
    assert frame.schema["start_utc"] == pl.String()
    assert check_clearing(market, frame, rejected("B4")).ok


# --- rule 1: every bid placed once or rejected once ----------------------------------------


def test_unknown_bid_placed(market: Market) -> None:
    rows = [*good_rows(), row("B9", "KR-1", "H100", 0, 1, 1, 1.0, 0.5, 0.1,
                              ask=1.0, fee=0.05, value=0.0)]
    problem = only_problem(check(market, rows))
    assert "bid B9" in problem and "not in the market's bids" in problem and "KR-1" in problem


def test_bid_placed_twice(market: Market) -> None:
    # A second B1 on KR-1 H100 at hours 0-1 (4 + 4 = 8 GPUs at hour 1, fits): 8 kWh,
    # 4 x (500 + 400) / 1000 = 3.6 kg, 0.8 EUR.
    rows = [*good_rows(), row("B1", "KR-1", "H100", 0, 2, 4, 8.0, 3.6, 0.8,
                              ask=8.0, fee=0.36, value=50.0)]
    problem = only_problem(check(market, rows))
    assert "bid B1 is placed 2 times" in problem and "KR-1" in problem


def test_bid_placed_and_rejected(market: Market) -> None:
    problem = only_problem(check(market, rejects=("B4", "B1")))
    assert "bid B1 is both placed (site KR-1) and rejected" in problem


def test_bid_neither_placed_nor_rejected(market: Market) -> None:
    problem = only_problem(check(market, rejects=()))
    assert problem.startswith("bid B4 is neither placed nor rejected")


def test_rejected_twice_and_unknown_and_without_reason(market: Market) -> None:
    frame = pl.DataFrame({"bid_id": ["B4", "B4", "B7", "B4"], "reason": ["a", "b", "c", " "]})
    report = check_clearing(market, placements(good_rows()), frame)
    has(report, "bid B4 is rejected 3 times")
    has(report, "rejected bid B7 is not in the market's bids")
    has(report, "rejected bid B4 has no reason")
    assert len(report.problems) == 3, report.problems


# --- rule 2: an option of the bid, its duration, whole hours, the bid's GPUs ------------------


def test_gpu_type_not_an_option(market: Market) -> None:
    # B3 bids for H100 only; the A100 row on CA-1 also finds no capacity there.
    report = check(market, with_row("B3", gpu_type="A100"))
    problem = has(report, "bid B3", "A100", "not one of its options 'H100:2'")
    assert "CA-1" in problem
    has(report, "site CA-1, A100, hour 2023-07-03T02:00Z", "only 0 available")


def test_wrong_duration_for_the_option(market: Market) -> None:
    # B1 on A100 takes 3 h, not the 2 h of its H100 option. Same figures (it_kw and ask are
    # equal for both types) and 4 A100 fit, so the duration is the only problem.
    problem = only_problem(check(market, with_row("B1", gpu_type="A100")))
    assert "bid B1 on A100 at site KR-1 runs 2 h" in problem
    assert "2023-07-03T01:00Z to 2023-07-03T03:00Z" in problem
    assert "its A100 option takes 3 h" in problem


def test_times_off_the_hour(market: Market) -> None:
    rows = with_row("B1", start_utc=at(1) + timedelta(minutes=30),
                    end_utc=at(3) + timedelta(minutes=30))
    report = check(market, rows)
    has(report, "bid B1 at site KR-1: start_utc 2023-07-03T01:30Z is not on the hour")
    has(report, "bid B1 at site KR-1: end_utc 2023-07-03T03:30Z is not on the hour")


def test_wrong_gpu_count(market: Market) -> None:
    # 3 GPUs instead of 4; figures restated for 3 GPUs: 6 kWh, 2.1 kg, 0.6 EUR.
    rows = with_row("B1", gpus=3, energy_kwh=6.0, emissions_kg=2.1, energy_cost_eur=0.6)
    problem = only_problem(check(market, rows))
    assert "bid B1 is placed with 3 GPUs at site KR-1" in problem
    assert "it bids for 4 GPUs" in problem


# --- rule 3: release, deadline and window ------------------------------------------------------


def test_before_release(market: Market) -> None:
    # B3 (release hour 2) at hours 1-2 on CA-1: 8 and 4 GPUs free, flat intensity and price,
    # so the figures are unchanged.
    problem = only_problem(check(market, with_row("B3", start_utc=at(1), end_utc=at(3))))
    assert problem == (
        "bid B3 at site CA-1 starts at 2023-07-03T01:00Z, before its release at "
        "2023-07-03T02:00Z"
    )


def test_after_deadline(market: Market) -> None:
    # B1 (deadline hour 4) at hours 3-4: 4 x (300 + 400) / 1000 = 2.8 kg, as at hours 1-2.
    problem = only_problem(check(market, with_row("B1", start_utc=at(3), end_utc=at(5))))
    assert problem == (
        "bid B1 at site KR-1 ends at 2023-07-03T05:00Z (exclusive), after its deadline "
        "2023-07-03T04:00Z"
    )


def test_outside_window(market: Market) -> None:
    # B2's own terms reach hour 8, but the window closes at hour 6; hour 6 has no capacity row
    # (0 GPUs) and no grid row, so only the window and the capacity are reported.
    report = check(market, with_row("B2", start_utc=at(4), end_utc=at(7)))
    has(report, "bid B2 at site KR-1 ends at 2023-07-03T07:00Z", "after the market window "
        "closes at 2023-07-03T06:00Z")
    has(report, "site KR-1, A100, hour 2023-07-03T06:00Z: 2 GPUs placed (bids B2)")
    assert len(report.problems) == 2, report.problems


def test_before_window(market: Market) -> None:
    report = check(market, with_row("B2", start_utc=at(-1), end_utc=at(2)))
    has(report, "bid B2 at site KR-1 starts at 2023-07-02T23:00Z", "before the market window "
        "opens at 2023-07-03T00:00Z")


# --- rule 4: site and jurisdiction -----------------------------------------------------------


def test_jurisdiction_not_allowed(market: Market) -> None:
    # B3 (CA only) on KR-1 H100 at hours 2-3: 8 kWh, 4 x (300 + 300) / 1000 = 2.4 kg,
    # 0.8 EUR, ask 8 EUR. KR-1 H100 holds B1's 4 + B3's 4 = 8 at hour 2: fits.
    rows = with_row("B3", site_id="KR-1", energy_kwh=8.0, emissions_kg=2.4,
                    energy_cost_eur=0.8)
    problem = only_problem(check(market, rows))
    assert problem == (
        "bid B3 is placed at site KR-1 in jurisdiction KR, outside its allowed "
        "jurisdictions 'CA'"
    )


def test_spaces_in_allowed_list_are_ignored(market: Market) -> None:
    # B2 allows 'KR; CA': the ' CA' entry still allows CA-1. Its H100 option (1 h) there at
    # hour 4: 2 x 1.5 = 3 kWh, 3 x 100 / 1000 = 0.3 kg, 3 x (50 + 10) / 1000 = 0.18 EUR.
    rows = with_row("B2", site_id="CA-1", gpu_type="H100", start_utc=at(4), end_utc=at(5),
                    energy_kwh=3.0, emissions_kg=0.3, energy_cost_eur=0.18)
    assert check(market, rows).ok


def test_unknown_site(market: Market) -> None:
    report = check(market, with_row("B1", site_id="XX-9"))
    has(report, "bid B1 is placed at unknown site XX-9")


def test_missing_market_rows_are_reported(market: Market) -> None:
    # A market without KR's grid row at hour 4 or A100's it_kw cannot price B2 (A100, 3-5).
    no_grid = replace(market, grid=market.grid.filter(
        (pl.col("zone") != "KR") | (pl.col("hour_utc") != at(4))))
    has(check(no_grid), "no grid row for zone KR at hour 2023-07-03T04:00Z", "bid B2")
    no_type = replace(market, gpus=market.gpus.filter(pl.col("gpu_type") != "A100"))
    problem = only_problem(check(no_type))
    assert problem.startswith("GPU type A100 of bid B2 at site KR-1 is not in the market's gpus")


# --- rule 5: capacity --------------------------------------------------------------------------


def test_capacity_overflow_in_one_hour_only() -> None:
    # CA-1 offers only 3 H100 at hour 2: B3's 4 GPUs overflow there and nowhere else.
    market = hand_kit(ca_h100=(8, 8, 3, 8, 8, 8)).market()
    problem = only_problem(check(market))
    assert problem == (
        "site CA-1, H100, hour 2023-07-03T02:00Z: 4 GPUs placed (bids B3) but only 3 available"
    )


def test_capacity_sums_over_bids(market: Market) -> None:
    # B4 (8 H100, hours 0-2) on KR-1 beside B1 (4 H100, hours 1-2): 12 > 8 at hours 1 and 2.
    # B4: 24 kWh; 8 x (500 + 400 + 300) / 1000 = 9.6 kg; 2.4 EUR.
    rows = [*good_rows(), row("B4", "KR-1", "H100", 0, 3, 8, 24.0, 9.6, 2.4,
                              ask=24.0, fee=0.96, value=5.0)]
    report = check(market, rows, rejects=())
    has(report, "site KR-1, H100, hour 2023-07-03T01:00Z: 12 GPUs placed (bids B1, B4)")
    has(report, "site KR-1, H100, hour 2023-07-03T02:00Z: 12 GPUs placed")
    assert len(report.problems) == 2, report.problems


# --- rule 6: each placement's figures ----------------------------------------------------------


def test_misreported_emissions(market: Market) -> None:
    problem = only_problem(check(market, with_row("B2", emissions_kg=2.5)))
    assert problem == (
        "bid B2 at site KR-1 (A100, 2023-07-03T03:00Z to 2023-07-03T06:00Z): emissions_kg "
        "reported 2.5 kg but recomputes to 2.4 kg"
    )


def test_misreported_energy_and_missing_figure(market: Market) -> None:
    report = check(market, with_row("B3", energy_kwh=8.0, energy_cost_eur=None))
    has(report, "bid B3 at site CA-1", "energy_kwh reported 8 kWh but recomputes to 12 kWh")
    has(report, "bid B3 at site CA-1", "energy_cost_eur reported nothing")


def test_optional_figures_checked_when_present(market: Market) -> None:
    rows = with_row("B1", ask_eur=4.0, carbon_fee_eur=0.3, value_eur=55.0)
    report = check_clearing(market, placements(rows, extra=True), rejected("B4"))
    has(report, "bid B1", "ask_eur reported 4 EUR but recomputes to 8 EUR")
    has(report, "bid B1", "carbon_fee_eur reported 0.3 EUR but recomputes to 0.28 EUR")
    has(report, "bid B1", "value_eur reported 55 EUR but recomputes to 50 EUR")
    assert len(report.problems) == 3, report.problems


# --- rules 7 and 8: the summary ------------------------------------------------------------------


def test_wrong_summary_welfare(market: Market) -> None:
    # 3 placements allow 3 cents: 87.26 passes, 88 does not.
    assert check(market, summary=good_summary() | {"welfare_eur": 87.26}).ok
    problem = only_problem(check(market, summary=good_summary() | {"welfare_eur": 88.0}))
    assert problem.startswith("summary welfare_eur is 88 but the placements give 87.24")


def test_wrong_summary_counts_and_physical_totals(market: Market) -> None:
    summary = good_summary() | {"accepted": 4, "work_h": 22.0, "kg_per_work_h": 6.4 / 22}
    report = check(market, summary=summary)
    has(report, "summary accepted is 4 but the placements give 3")
    has(report, "summary work_h is 22 but the placements give 18")
    has(report, "summary kg_per_work_h is")
    assert len(report.problems) == 3, report.problems


def test_summary_objective_and_bound(market: Market) -> None:
    report = check(market, summary=good_summary() | {"objective_eur": 90.0, "bound_eur": 80.0})
    has(report, "summary objective_eur is 90 but the placements' welfare is 87.24")
    has(report, "summary bound_eur 80 is below the placements' welfare 87.24")
    assert len(report.problems) == 2, report.problems


def test_summary_value_not_a_number(market: Market) -> None:
    problem = only_problem(check(market, summary=good_summary() | {"energy_kwh": "26"}))
    assert problem.startswith("summary energy_kwh is '26', not a number")


def test_emissions_cap_exceeded(market: Market) -> None:
    assert check(market, summary=good_summary() | {"emissions_cap_kg": 6.4}).ok
    problem = only_problem(check(market, summary=good_summary() | {"emissions_cap_kg": 6.0}))
    assert problem.startswith("total emissions 6.4 kg exceed the emissions cap 6 kg")


# --- the report ------------------------------------------------------------------------------


def test_raise_if_failed_lists_the_problems(market: Market) -> None:
    report = check(market, rejects=())
    assert not report.ok
    with pytest.raises(CheckFailedError, match="bid B4 is neither placed nor rejected"):
        report.raise_if_failed()


def test_missing_columns_are_one_problem(market: Market) -> None:
    frame = placements(good_rows()).drop("emissions_kg")
    report = check_clearing(market, frame, rejected("B4"))
    assert only_problem(report).startswith("placements lack column(s) emissions_kg")
    assert all(math.isnan(v) for v in report.totals.values())


def test_problem_list_is_capped() -> None:
    market = read_bundle(W27)
    report = check_clearing(market, placements([]), rejected())
    n = market.bids.height  # every bid lacks an outcome
    assert len(report.problems) == MAX_PROBLEMS + 1
    assert report.problems[-1] == f"… and {n - MAX_PROBLEMS} more"


# --- the real bundled market -------------------------------------------------------------------


def test_real_market_all_rejected_passes() -> None:
    market = read_bundle(W27)
    report = check_clearing(market, placements([]), rejected(*market.bids["bid_id"]))
    assert report.ok, report.problems
    assert report.totals["rejected"] == market.bids.height
    assert report.totals["welfare_eur"] == 0.0


def test_real_market_one_valid_placement_passes() -> None:
    market = read_bundle(Path(W27))
    bid = market.bids.row(0, named=True)
    # 2023-W27-B0001: 64 GPUs, options GH200:16;H100:18;A100:41, [07-08, 07-10), anywhere.
    # Place it on CA-TORONTO-1's H100 pool (168..256 GPUs every hour) for its 18 h.
    assert bid["bid_id"] == "2023-W27-B0001" and bid["gpus"] == 64
    site_id, gpu_type, hours = "CA-TORONTO-1", "H100", 18
    start = datetime.fromisoformat("2023-07-08T00:00+00:00")
    end = start + timedelta(hours=hours)

    # The figures by hand, hour by hour from the tables' own rows.
    site = market.sites.filter(pl.col("site_id") == site_id).row(0, named=True)
    it_kw = market.gpus.filter(pl.col("gpu_type") == gpu_type)["it_kw"].item()
    grid = {r["hour_utc"]: r for r in market.grid.filter(pl.col("zone") == site["zone"])
            .iter_rows(named=True)}
    capacity = {r["hour_utc"]: r for r in market.capacity.filter(
        (pl.col("site_id") == site_id) & (pl.col("gpu_type") == gpu_type)).iter_rows(named=True)}
    kwh = kg = cost = ask = 0.0
    for h in range(hours):
        hour = start + timedelta(hours=h)
        assert capacity[hour]["gpus_available"] >= 64
        hour_kwh = 64 * it_kw * site["pue"]  # 64 x 1.275 x 1.56 = 127.296 kWh
        kwh += hour_kwh
        kg += hour_kwh * grid[hour]["carbon_direct_g_per_kwh"] / 1000
        cost += hour_kwh * (grid[hour]["price_eur_per_mwh"]
                            + site["tariff_adder_eur_per_mwh"]) / 1000
        ask += 64 * capacity[hour]["ask_eur_per_gpu_hour"]
    assert kwh == pytest.approx(127.296 * 18)

    frame = placements([{
        "bid_id": bid["bid_id"], "site_id": site_id, "gpu_type": gpu_type,
        "start_utc": start, "end_utc": end, "gpus": 64, "energy_kwh": round(kwh, 6),
        "emissions_kg": round(kg, 6), "energy_cost_eur": round(cost, 2),
    }])
    others = market.bids.filter(pl.col("bid_id") != bid["bid_id"])["bid_id"]
    fee = 85.0 * kg / 1000  # the bundle's carbon price, EUR/t
    welfare = bid["value_eur"] - cost - ask - fee
    summary = {
        "accepted": 1, "rejected": others.len(), "gpu_hours": 64 * 18,
        "work_h": 64 * 16,  # shortest option GH200:16, though it ran on H100
        "energy_kwh": kwh, "emissions_kg": kg, "energy_cost_eur": round(cost, 2),
        "ask_eur": ask, "carbon_fee_eur": fee, "value_eur": bid["value_eur"],
        "welfare_eur": round(welfare, 2), "objective_eur": welfare, "bound_eur": welfare + 1,
        "emissions_cap_kg": None,
    }
    report = check_clearing(market, frame, rejected(*others), summary)
    assert report.ok, report.problems
    assert report.totals["work_h"] == 64 * 16
    assert report.totals["welfare_eur"] == pytest.approx(welfare)

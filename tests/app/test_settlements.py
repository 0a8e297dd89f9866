"""The Settlements page: the statements' figures, the cross-border matrix, and downloads
byte-identical to ``gridbridge report`` (bundle mode) and to the exchange's report files."""

from __future__ import annotations

import io

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AppExchange, SmallBundle, served
from tests.app.find import chart_data, metric, open_round, pick, table, texts


def _download(at: AppTest, fmt: str, name: str) -> bytes:
    """Choose ``name`` in the page's download picker; the bytes its button serves."""
    at.radio(key="download_format").set_value(fmt).run()
    if fmt != "xlsx":
        at.selectbox(key="download_file").set_value(name).run()
    assert not at.exception, [e.message for e in at.exception]
    [button] = at.download_button
    assert button.label == f"Download {name}"
    return served(button.proto.url)  # type: ignore[attr-defined]


def test_bundle_statements_and_downloads(bundle_app, small_bundle: SmallBundle) -> None:
    at = bundle_app("settlements")
    reports = small_bundle.reports
    summary = pl.read_csv(reports / "alliance_summary.csv").row(0, named=True)
    assert metric(at, "Members paid") == f"{summary['members_paid_eur']:,.2f} EUR"
    assert metric(at, "Carbon fund inflow") == f"{summary['carbon_fund_inflow_eur']:,.2f} EUR"
    assert metric(at, "Uplift") == f"{summary['uplift_eur']:,.2f} EUR"
    assert metric(at, "Ledger sum") == "0 cents"
    totals = pl.read_csv(reports / "member_totals.csv")
    shown = table(at, "net_cents")
    assert list(shown["member"]) == totals["member"].to_list()
    assert list(shown["net_cents"]) == totals["net_cents"].to_list()
    matrix = pl.read_csv(reports / "cross_border.csv")
    cells = chart_data(at, "EUR paid by each member")
    paid = {(r["payer_member"], r["site_member"]): r["paid_eur"]
            for r in cells.to_dict("records")}
    for row in matrix.iter_rows(named=True):
        assert paid[(row["payer_member"], "KR")] == row["to_KR_eur"]

    for fmt, name in (("csv", "member_totals.csv"), ("parquet", "site_statements.parquet"),
                      ("xlsx", "settlement.xlsx")):
        assert _download(at, fmt, name) == (reports / name).read_bytes(), name


def test_bundle_without_a_clearing_explains_the_next_step(bundle_app, monkeypatch) -> None:
    monkeypatch.delenv("GRIDBRIDGE_APP_CLEARING")
    at = bundle_app("settlements")
    assert any(t.startswith("No round has been cleared yet") for t in texts(at, "info"))
    assert not at.download_button


def test_exchange_treasurer(exchange_app, app_exchange: AppExchange) -> None:
    at = exchange_app("treasurer")("settlements")
    pick(at, app_exchange.cleared)
    base = f"/v1/rounds/{app_exchange.cleared}/reports"
    client = app_exchange.client("treasurer")
    totals = pl.read_parquet(io.BytesIO(client.get(f"{base}/member_totals.parquet").content))
    assert list(table(at, "net_cents")["net_cents"]) == totals["net_cents"].to_list()
    summary = pl.read_parquet(io.BytesIO(client.get(f"{base}/alliance_summary.parquet")
                                         .content)).row(0, named=True)
    assert metric(at, "Sites received") == f"{summary['sites_received_eur']:,.2f} EUR"
    for fmt, name in (("csv", "cross_border.csv"), ("parquet", "member_statements.parquet"),
                      ("xlsx", "settlement.xlsx")):
        assert _download(at, fmt, name) == client.get(f"{base}/{name}").content, name


def test_exchange_member_gets_its_own_statement(exchange_app,
                                                app_exchange: AppExchange) -> None:
    at = exchange_app("member_kr")("settlements")
    pick(at, app_exchange.cleared)
    assert set(table(at, "net_cents")["member"]) == {"KR"}
    assert at.selectbox(key="download_file").options == ["member_statements.csv",
                                                         "member_totals.csv"]
    base = f"/v1/rounds/{app_exchange.cleared}/reports"
    assert _download(at, "csv", "member_totals.csv") == app_exchange.client(
        "member_kr").get(f"{base}/member_totals.csv").content
    assert not at.metric  # the alliance's totals are the treasurers'


@pytest.mark.parametrize("who", ["planner", "admin"])
def test_exchange_open_rounds_are_not_settled(exchange_app, app_exchange: AppExchange,
                                              who: str) -> None:
    round_id = open_round(app_exchange)
    at = exchange_app(who)("settlements")
    labels = at.selectbox[0].options
    assert not any(label.startswith(round_id) for label in labels)

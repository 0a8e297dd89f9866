"""The Bids page: the table with what became of each bid, its filters, and the form, whose
messages are the API's own; in bundle mode (drafts) and against a real exchange."""

from __future__ import annotations

import polars as pl
from streamlit.testing.v1 import AppTest

from gridbridge.appdata.bidform import field_messages
from tests.app.conftest import AppExchange, SmallBundle
from tests.app.find import open_round, pick, table, texts
from tests.exchange.conftest import WINDOW


def _fill(at: AppTest, **values: object) -> None:
    for key, value in values.items():
        widget = at.number_input(key=key) if key in ("bid_gpus", "bid_value") else (
            at.selectbox(key=key) if key == "bid_member" else at.text_input(key=key))
        widget.set_value(value)


def _submit(at: AppTest) -> None:
    at.button[[b.label for b in at.button].index("Submit bid")].click().run()
    assert not at.exception


def _error_lines(at: AppTest) -> list[str]:
    [error] = texts(at, "error")
    return [line.removeprefix("- ") for line in error.splitlines() if line.startswith("- ")]


def test_bundle_table_statuses_and_filters(bundle_app, small_bundle: SmallBundle) -> None:
    at = bundle_app("bids")
    bids = pl.read_csv(small_bundle.bundle / "bids.csv")
    placed = pl.read_csv(small_bundle.clearing / "placements.csv")
    rejected = pl.read_csv(small_bundle.clearing / "rejected.csv")
    shown = table(at, "gpu_options")
    assert sorted(shown["bid_id"]) == sorted(bids["bid_id"])
    accepted = shown[shown["status"] == "accepted"]
    assert sorted(accepted["bid_id"]) == sorted(placed["bid_id"])
    assert dict(zip(accepted["bid_id"], accepted["site_id"], strict=True)) == dict(
        placed.select("bid_id", "site_id").iter_rows())
    assert sorted(shown[shown["status"] == "rejected"]["bid_id"]) == sorted(rejected["bid_id"])

    at.multiselect(key="bids_members").set_value(["KR"]).run()
    at.multiselect(key="bids_statuses").set_value(["accepted"]).run()
    kept = table(at, "gpu_options")
    assert set(kept["member"]) == {"KR"} and set(kept["status"]) == {"accepted"}
    assert len(kept) == placed.filter(pl.col("member") == "KR").height


def test_bundle_draft_bid_added_refused_and_withdrawn(bundle_app) -> None:
    at = bundle_app("bids")
    _fill(at, bid_id="draft 1", bid_gpus=0, bid_options="H100:x",
          bid_release="2023-07-03T00:30Z")
    _submit(at)
    lines = _error_lines(at)
    assert lines[0].startswith("options: option 'H100:x' has hours 'x', not a whole number")
    assert lines[1:] == [
        "bid_id: String should match pattern '^[A-Za-z0-9._:@-]{1,100}$'",
        "gpus: Input should be greater than or equal to 1",
        "release_utc: Value error, must be on a whole hour (hour-beginning), e.g. "
        "2023-07-03T14:00Z"]

    # A GPU type the bundle does not have: the bundle's own rule names the row and field.
    _fill(at, bid_id="draft-1", bid_gpus=8, bid_options="Z100:4",
          bid_release="2023-07-03T00:00Z")
    _submit(at)
    assert "bids.csv" in texts(at, "error")[0] and "Z100" in texts(at, "error")[0]

    _fill(at, bid_id="draft-1", bid_member="DE", bid_options="H100:4", bid_value=5000.0)
    _submit(at)
    drafts = table(at, "gpu_options").query("status == 'draft'")
    assert list(drafts["bid_id"]) == ["draft-1"] and list(drafts["member"]) == ["DE"]
    assert list(drafts["gpus"]) == [8] and list(drafts["value_eur"]) == [5000.0]

    at.button(key="withdraw_button").click().run()
    assert not at.exception
    assert "draft" not in set(table(at, "gpu_options")["status"])


def test_exchange_member_sees_its_own_bids(exchange_app, app_exchange: AppExchange) -> None:
    at = exchange_app("member_kr")("bids")
    pick(at, app_exchange.cleared)
    shown = table(at, "gpu_options")
    assert set(shown["member"]) == {"KR"}
    assert sorted(shown["bid_id"]) == ["kr-big", "kr-gone", "kr-small"]
    placed = app_exchange.client("member_kr").get(
        f"/v1/rounds/{app_exchange.cleared}/placements").json()
    accepted = shown[shown["status"] == "accepted"]
    assert sorted(accepted["bid_id"]) == sorted(p["bid_id"] for p in placed)
    assert list(shown[shown["bid_id"] == "kr-gone"]["status"]) == ["withdrawn"]
    assert any("bids are taken and withdrawn only while a round is open" in t
               for t in texts(at, "info"))


def test_exchange_member_submits_and_withdraws(exchange_app, app_exchange: AppExchange) -> None:
    round_id = open_round(app_exchange)
    at = exchange_app("member_kr")("bids")
    pick(at, round_id)
    # Refused by the model (the same messages the API answers for the same body) ...
    _fill(at, bid_id="ui-1", bid_gpus=0, bid_release=WINDOW[0], bid_deadline=WINDOW[0])
    _submit(at)
    api = app_exchange.client("member_kr").post(f"/v1/rounds/{round_id}/bids", json={
        "bid_id": "ui-1", "gpus": 0, "options": [{"gpu_type": "H100", "hours": 24},
                                                 {"gpu_type": "A100", "hours": 56}],
        "release_utc": WINDOW[0], "deadline_utc": WINDOW[0], "value_eur": 10000.0,
        "allowed_jurisdictions": ["*"]})
    assert api.status_code == 422
    assert _error_lines(at) == field_messages(api.json()["detail"])
    # ... and by the exchange (an unknown GPU type): its message as it answers it.
    _fill(at, bid_gpus=8, bid_deadline=WINDOW[1], bid_options="Z100:4")
    _submit(at)
    assert "GPU type 'Z100' is not in the registry" in texts(at, "error")[0]

    _fill(at, bid_options="H100:4;A100:9", bid_value=4321.0, bid_jurisdictions="KR; DE")
    _submit(at)
    assert texts(at, "success") == ["Bid ui-1 submitted (8 GPUs, 4,321.00 EUR)."]
    [stored] = app_exchange.client("member_kr").get(f"/v1/rounds/{round_id}/bids").json()
    assert (stored["bid_id"], stored["gpus"], stored["value_eur"]) == ("ui-1", 8, 4321.0)
    assert stored["options"] == [{"gpu_type": "H100", "hours": 4},
                                 {"gpu_type": "A100", "hours": 9}]
    assert stored["allowed_jurisdictions"] == ["KR", "DE"]
    assert list(table(at, "gpu_options")["status"]) == ["pending"]

    at.button(key="withdraw_button").click().run()
    assert not at.exception
    [gone] = app_exchange.client("member_kr").get(f"/v1/rounds/{round_id}/bids").json()
    assert gone["state"] == "withdrawn"


def test_exchange_treasurer_waits_for_the_clearing(exchange_app,
                                                  app_exchange: AppExchange) -> None:
    round_id = open_round(app_exchange)
    at = exchange_app("treasurer")("bids")
    pick(at, round_id)
    assert any("a treasurer sees them once the round is cleared" in t for t in texts(at, "info"))
    assert not at.get("form")  # treasurers do not bid

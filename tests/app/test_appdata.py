"""The app's logic without Streamlit: the token's role learnt from the exchange, Gantt lanes,
windows and drafts like the exchange's gate closure, the mode's settings, and
``gridbridge app``'s refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from gridbridge.appdata import AppConfig, ExchangeClient, ExchangeRefused, ExchangeSource
from gridbridge.appdata.bidform import BidForm, parse_bid
from gridbridge.appdata.client import ExchangeUnreachable, probe_viewer
from gridbridge.appdata.results import gantt_rows
from gridbridge.appdata.window import add_bids, restrict_window
from gridbridge.bundle import read_bundle
from gridbridge.errors import BundleError, InputError
from tests.app.conftest import AppExchange, SmallBundle
from tests.conftest import run_cli
from tests.exchange.server import free_port

T0 = datetime(2023, 7, 3, tzinfo=UTC)


@pytest.mark.parametrize(("who", "role", "subject"), [
    ("planner", "planner", None), ("treasurer", "treasurer", None), ("admin", "admin", None),
    ("member_kr", "member", "KR"), ("site", "site", "KR-SUWON-1"),
    ("other_site", "site", "SG-NSCC-1")])
def test_the_role_and_subject_come_from_whoami(app_exchange: AppExchange, who: str,
                                                    role: str, subject: str | None) -> None:
    client = ExchangeClient(app_exchange.url, app_exchange.token(who))
    try:
        assert (probe_viewer(client).role, probe_viewer(client).subject) == (role, subject)
        assert ExchangeSource(client).viewer.subject == subject
    finally:
        client.close()


def test_refusals_say_why(app_exchange: AppExchange) -> None:
    with pytest.raises(ExchangeRefused, match=r"401.*fix: start the app with a valid token"):
        ExchangeSource(ExchangeClient(app_exchange.url, "not-a-token"))
    source = ExchangeSource(ExchangeClient(app_exchange.url, app_exchange.token("member_kr")))
    with pytest.raises(ExchangeRefused, match="which are sealed") as refused:
        source.round_market(app_exchange.cleared)
    assert refused.value.status == 403
    with pytest.raises(ExchangeUnreachable, match="fix: start it with gridbridge exchange"):
        ExchangeSource(ExchangeClient(f"http://127.0.0.1:{free_port()}", "x"))


def _placement(site: str, start_h: int, end_h: int, bid: str) -> dict[str, object]:
    return {"bid_id": bid, "member": "KR", "site_id": site, "start_utc":
            T0 + timedelta(hours=start_h), "end_utc": T0 + timedelta(hours=end_h)}


def test_gantt_lanes_never_overlap() -> None:
    rows = gantt_rows(pl.DataFrame([
        _placement("A", 0, 10, "a1"), _placement("A", 5, 8, "a2"), _placement("A", 8, 12, "a3"),
        _placement("A", 10, 11, "a4"), _placement("B", 0, 4, "b1")]))
    lanes = dict(zip(rows["bid_id"], rows["lane"], strict=True))
    # a2 overlaps a1; a3 starts when a2 ends (half-open), a4 when a1 ends: both reuse lanes.
    assert lanes == {"a1": 0, "a2": 1, "a3": 1, "a4": 0, "b1": 0}
    assert dict(zip(rows["bid_id"], rows["hours"], strict=True))["a1"] == 10


def test_a_window_clamps_deadlines_and_leaves_out_what_no_longer_fits(
        small_bundle: SmallBundle) -> None:
    market = read_bundle(small_bundle.bundle)
    end = T0 + timedelta(hours=6)
    narrowed, excluded = restrict_window(market, T0, end)
    assert narrowed.config.window_end_utc == end
    assert narrowed.capacity["hour_utc"].max() < end and narrowed.grid["hour_utc"].max() < end
    assert (narrowed.bids["deadline_utc"] <= end).all()
    shortest = market.bid_options.group_by("bid_id").agg(pl.col("duration_h").min())
    fits = market.bids.join(shortest, on="bid_id").filter(
        (pl.min_horizontal("deadline_utc", pl.lit(end)) - pl.max_horizontal(
            "release_utc", pl.lit(T0))).dt.total_hours() >= pl.col("duration_h"))
    assert sorted(narrowed.bids["bid_id"]) == sorted(fits["bid_id"])
    assert sorted(excluded["bid_id"]) == sorted(set(market.bids["bid_id"]) - set(fits["bid_id"]))
    assert set(excluded["reason"]) == {"outside_window"}
    with pytest.raises(InputError, match=r"window: .* reaches outside"):
        restrict_window(market, T0, T0 + timedelta(days=9))
    with pytest.raises(InputError, match=r"window: start .* is not before end"):
        restrict_window(market, end, T0)


def test_drafts_follow_the_bundle_rules(small_bundle: SmallBundle) -> None:
    market = read_bundle(small_bundle.bundle)
    bid = parse_bid(BidForm("d1", 8, "H100:4", "2023-07-03T02:00Z", "2023-07-09T00:00Z", 500.0))
    assert not isinstance(bid, list)
    added = add_bids(market, [("DE", bid)])
    row = added.bids.filter(pl.col("bid_id") == "d1").row(0, named=True)
    assert row["member"] == "DE" and row["deadline_utc"] == T0 + timedelta(days=1)  # clamped
    with pytest.raises(BundleError, match=r"bids.csv.*member"):
        add_bids(market, [("XX", bid)])
    taken = parse_bid(BidForm(market.bids["bid_id"][0], 8, "H100:4", "2023-07-03T02:00Z",
                              "2023-07-04T00:00Z", 500.0))
    assert not isinstance(taken, list)
    with pytest.raises(BundleError, match="bid_id"):
        add_bids(market, [("DE", taken)])


def test_the_mode_must_be_one_and_complete(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no data: set --exchange URL --token T"):
        AppConfig.from_env({})
    with pytest.raises(InputError, match="not both"):
        AppConfig(exchange="http://x", token="t", bundle=tmp_path)
    with pytest.raises(InputError, match=r"--token .* is missing"):
        AppConfig(exchange="http://127.0.0.1:8000")
    with pytest.raises(InputError, match=r"--exchange .* is not an http URL"):
        AppConfig(exchange="127.0.0.1:8000", token="t")
    with pytest.raises(InputError, match=r"--bundle: .* is not a folder"):
        AppConfig(bundle=tmp_path / "missing")
    config = AppConfig(bundle=tmp_path)
    assert AppConfig.from_env(config.env()) == AppConfig(bundle=tmp_path.resolve())


def test_gridbridge_app_refuses_a_bad_mode(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    code, _out, err = run_cli(["app"], capsys)
    assert code == 2 and "no data: set --exchange URL --token T" in err
    code, _out, err = run_cli(["app", "--exchange", "http://127.0.0.1:1"], capsys)
    assert code == 2 and "--token (GRIDBRIDGE_APP_TOKEN) is missing" in err
    code, _out, err = run_cli(["app", "--bundle", str(tmp_path / "nope")], capsys)
    assert code == 2 and "is not a folder" in err

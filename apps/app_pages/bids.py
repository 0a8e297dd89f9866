"""Bids: the round's bids with what became of them, filters, and a member's form to submit
or withdraw a bid (checked with the exchange's own rules and messages)."""

import gbui
import polars as pl
import streamlit as st

from gridbridge.appdata.bidform import BidForm, parse_bid
from gridbridge.appdata.bidtable import STATUSES, BidFilter, bid_status, filter_bids, gpu_types_of
from gridbridge.errors import GridBridgeError
from gridbridge.hours import format_hour

data = gbui.page("Bids")
viewer = data.viewer
chosen = gbui.round_or_stop(data, "No market round yet. Next step: a planner opens one on the "
                                  "Market page; members then bid into it here.")
if viewer.role == "site":
    st.info("Site tokens see no bids; the Market page shows the jobs placed on your site.")
    st.stop()

with gbui.failing():
    result = data.result(chosen.round_id) if chosen.cleared else None
try:
    bids = data.bids(chosen.round_id)
except GridBridgeError as exc:
    st.info(f"The bids are not visible to you yet: {exc}")
    bids = None

if bids is not None:
    table = bid_status(bids, result)
    scope = "all members' bids" if viewer.sees_alliance else "your bids (bids are sealed)"
    st.caption(f"Round {chosen.round_id} · window [{gbui.utc(chosen.window_start_utc)}, "
               f"{gbui.utc(chosen.window_end_utc)}) · {scope}")
    if table.is_empty():
        st.info("No bids in this round yet." + (" Submit one with the form below."
                                               if viewer.can_bid else ""))
    else:
        f1, f2, f3, f4 = st.columns(4)
        members = f1.multiselect("Member", sorted(table["member"].unique().to_list()),
                                 key="bids_members")
        types = f2.multiselect("GPU type", gpu_types_of(table), key="bids_types")
        statuses = f3.multiselect("Status", [s for s in STATUSES
                                             if s in table["status"].to_list()],
                                  key="bids_statuses")
        low, high = int(table["gpus"].min()), int(table["gpus"].max())  # type: ignore[arg-type]
        size = f4.slider("Size (GPUs)", low, max(high, low + 1), (low, max(high, low + 1)),
                         key="bids_size")
        shown = filter_bids(table, BidFilter(members, types, statuses, size))
        counts = shown["status"].value_counts().sort("status").iter_rows()
        st.caption(f"{shown.height} of {table.height} bids · "
                   + ", ".join(f"{n} {s}" for s, n in counts))
        gbui.table(shown.select("member", "bid_id", "status", "gpus", "gpu_options",
                                "release_utc", "deadline_utc", "value_eur",
                                "allowed_jurisdictions", "site_id", "gpu_type", "start_utc",
                                "payment_eur", "reason", "detail"),
                   "bids_table", gpu_options="options (GPU type:hours)", release_utc="release",
                   deadline_utc="deadline, exclusive", start_utc="placed start")

if not viewer.can_bid:
    st.stop()
if data.mode == "exchange" and chosen.state != "open":
    st.info(f"Round {chosen.round_id} is {chosen.state}: bids are taken and withdrawn only "
            "while a round is open. Pick an open round above.")
    st.stop()

st.subheader("Submit a bid" if data.mode == "exchange" else "Draft a bid (what-if)")
if data.mode == "bundle":
    st.caption("Bundle mode: a draft joins this session's what-ifs on the Market page; the "
               "bundle's files are not changed.")
with st.form("bid_form"):
    c1, c2, c3 = st.columns(3)
    bid_id = c1.text_input("Bid id", key="bid_id", help="1-100 letters, digits, . _ : @ -")
    if data.mode == "bundle":
        member = c2.selectbox("Member", sorted(data.round_market(chosen.round_id)
                                               .members["member"].to_list()), key="bid_member")
    else:
        member = viewer.subject
        c2.text_input("Member", value=member or "the token's member", disabled=True)
    gpus = c3.number_input("GPUs", min_value=0, value=8, step=1, key="bid_gpus")
    options = c1.text_input("Options (GPU type:hours; …)", value="H100:24;A100:56",
                            key="bid_options")
    release = c2.text_input("Release (UTC)", value=format_hour(chosen.window_start_utc),
                            key="bid_release")
    deadline = c3.text_input("Deadline (UTC, exclusive)",
                             value=format_hour(chosen.window_end_utc), key="bid_deadline")
    value = c1.number_input("Value (EUR, most you pay for the whole job)", value=10000.0,
                            step=100.0, key="bid_value")
    where = c2.text_input("Allowed jurisdictions (ISO codes ; or *)", value="*",
                          key="bid_jurisdictions")
    submitted = st.form_submit_button("Submit bid", type="primary")
if submitted:
    parsed = parse_bid(BidForm(bid_id, int(gpus), options, release, deadline, float(value),
                               where))
    if isinstance(parsed, list):
        st.error("The bid was not submitted:\n\n" + "\n".join(f"- {m}" for m in parsed))
    else:
        try:
            data.submit_bid(chosen.round_id, parsed, member)
        except GridBridgeError as exc:
            st.error(f"The bid was not submitted: {exc}")
        else:
            gbui.flash(f"Bid {parsed.bid_id} submitted ({parsed.gpus} GPUs, "
                       f"{parsed.value_eur:,.2f} EUR).")
            st.rerun()

if bids is not None:
    mine = bid_status(data.bids(chosen.round_id), None)
    mine = mine.filter(pl.col("state") == ("draft" if data.mode == "bundle"
                                                else "submitted"))
    if not mine.is_empty():
        st.subheader("Withdraw a bid")
        keys = list(zip(mine["member"], mine["bid_id"], strict=True))
        pick = st.selectbox("Bid", keys, format_func=lambda k: f"{k[0]}/{k[1]}",
                            key="withdraw_pick")
        if st.button("Withdraw", key="withdraw_button"):
            with gbui.failing():
                data.withdraw_bid(chosen.round_id, pick[0], pick[1])
            gbui.flash(f"Bid {pick[1]} withdrawn.")
            st.rerun()

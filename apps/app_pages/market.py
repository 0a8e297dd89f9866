"""Market: run a round (or a what-if at a chosen window and carbon price) and see where and
when every job runs, how full the pool is, the capacity prices, the rejected bids, the round
against both baselines, and the cost–carbon trade-off curve."""

from datetime import UTC, datetime, time, timedelta

import altair as alt
import gbui
import polars as pl
import streamlit as st

from gridbridge.appdata import RoundInfo, RoundResult
from gridbridge.appdata.results import (
    baseline_table,
    chosen_point,
    frontier_rows,
    gantt_rows,
    price_rows,
    utilisation_by_hour,
)
from gridbridge.appdata.whatif import parse_prices, sweep, what_if
from gridbridge.exchange.contract import RoundIn
from gridbridge.limits import CARBON_PRICE_EUR_PER_T

#: How long the page waits for the exchange to clear a closed round (seconds).
CLOSE_TIMEOUT_S = 600.0

data = gbui.page("Market")
viewer = data.viewer

if data.mode == "exchange" and viewer.can_plan:
    with st.expander("Open a new round"), st.form("open_round"):
        o1, o2, o3, o4 = st.columns(4)
        day = o1.date_input("First day (UTC)", key="open_day")
        days = o2.number_input("Days (1-31)", min_value=1, max_value=31, value=7,
                               key="open_days")
        price = o3.number_input("Carbon price (EUR/t CO2eq)", min_value=0.0,
                                max_value=CARBON_PRICE_EUR_PER_T.high, value=85.0,
                                key="open_price")
        signal = o4.radio("Carbon signal", ("direct", "lifecycle"), key="open_signal")
        if st.form_submit_button("Open round"):
            start = datetime.combine(day, time(), UTC)  # type: ignore[arg-type]
            with gbui.failing():
                opened = data.open_round(RoundIn(
                    window_start_utc=start, window_end_utc=start + timedelta(days=int(days)),
                    carbon_price_eur_per_t=float(price), carbon_signal=signal))
            gbui.choose_round(opened.round_id)
            gbui.flash(f"Round {opened.round_id} is open: members can bid now.")
            st.rerun()

chosen = gbui.round_or_stop(data, "No market round yet. Next step: a planner opens one "
                                  "(above, in exchange mode), members bid, then the planner "
                                  "runs it here.")
st.caption(f"Round {chosen.round_id} · window [{gbui.utc(chosen.window_start_utc)}, "
           f"{gbui.utc(chosen.window_end_utc)}) · carbon price "
           f"{chosen.carbon_price_eur_per_t:,.2f} EUR/t CO2eq ({chosen.carbon_signal}) · "
           f"{chosen.state}")
whatif_key = f"gb_whatif_{chosen.round_id}"
sweep_key = f"gb_sweep_{chosen.round_id}"


def run_close(picked: RoundInfo) -> None:
    """Close the gate and wait for the exchange's worker, showing its progress."""
    with st.status("Closing the gate…", expanded=True) as status:
        def say(message: str) -> None:
            status.update(label=f"Clearing round {picked.round_id}: {message}")

        with gbui.failing():
            done = data.close_round(picked.round_id, say, CLOSE_TIMEOUT_S)
        if done.state == "failed":
            status.update(label=f"Round failed: {done.reason}", state="error")
        else:
            status.update(label=f"Round {done.round_id} is {done.state}", state="complete")
    st.session_state.pop(whatif_key, None)


def run_what_if(picked: RoundInfo) -> None:
    """The what-if form: window, carbon price, time limit; the result is kept for the
    session (it is not stored anywhere)."""
    start, end = picked.window_start_utc, picked.window_end_utc
    hours = [start + timedelta(hours=h) for h in range(int((end - start) / timedelta(hours=1))
                                                       + 1)]
    with st.form("what_if"):
        window = st.select_slider("Window (UTC; the end is exclusive)", options=hours,
                                  value=(start, end), format_func=gbui.utc, key="wi_window")
        w1, w2 = st.columns(2)
        price = w1.number_input("Carbon price (EUR/t CO2eq)", min_value=0.0,
                                max_value=CARBON_PRICE_EUR_PER_T.high,
                                value=float(picked.carbon_price_eur_per_t), step=5.0,
                                key="wi_price")
        limit = w2.number_input("Solver time limit (s)", min_value=1.0, value=30.0, step=5.0,
                                key="wi_limit", help="For the solve, and again for pricing.")
        go = st.form_submit_button("Run round", type="primary")
    if not go:
        return
    with st.status("Clearing…", expanded=True) as status:
        def say(phase: str) -> None:
            status.update(label=f"Clearing: {phase}")
            st.write(phase)

        with gbui.failing():
            market = data.round_market(picked.round_id)
            result = what_if(market, float(price), float(limit), window=tuple(window),
                             progress=say)
        status.update(label=f"Cleared in {result.solve_s:.1f} s", state="complete")
    st.session_state[whatif_key] = (float(price), tuple(window), result)


can_close = data.mode == "exchange" and chosen.state == "open" and viewer.can_plan
can_what_if = data.mode == "bundle" or (chosen.cleared and viewer.sees_alliance)
if can_close:
    st.write(f"Running the round closes its gate (bids freeze) and the exchange clears it at "
             f"the round's carbon price, {chosen.carbon_price_eur_per_t:,.2f} EUR/t CO2eq.")
    if st.button("Run round: close the gate and clear", type="primary", key="close_round"):
        run_close(chosen)
        st.rerun()
elif chosen.state == "failed":
    st.error(f"Round {chosen.round_id} failed: {chosen.reason}")
elif can_what_if:
    with st.expander("Run a what-if (window, carbon price)", expanded=not chosen.cleared):
        run_what_if(chosen)

held = st.session_state.get(whatif_key)
result: RoundResult | None
if held is not None:
    price, window, result = held
    st.info(f"Showing a what-if at {price:,.2f} EUR/t CO2eq over [{gbui.utc(window[0])}, "
            f"{gbui.utc(window[1])}) — computed here, not stored.")
    if st.button("Back to the stored clearing", key="drop_what_if"):
        st.session_state.pop(whatif_key)
        st.rerun()
else:
    with gbui.failing():
        result = data.result(chosen.round_id)
if result is None:
    st.info("This round has no clearing yet. Next step: "
            + ("run it above." if can_close or can_what_if
               else "wait for a planner to close the gate and clear it."))
    st.stop()
for note in result.notes:
    st.caption(note)

summary = result.summary or {}
if summary:
    gap = summary.get("gap")
    st.success(f"Clearing status {summary.get('status')} · gap "
               + (f"{gap:.2%}" if isinstance(gap, int | float) else "—") + " · solve time "
               + ("—" if result.solve_s is None else f"{result.solve_s:,.1f} s"))
    m = st.columns(5)
    m[0].metric("Welfare (EUR)", f"{summary.get('welfare_eur', 0):,.0f}")
    m[1].metric("Surplus (EUR)", f"{summary.get('surplus_eur', 0):,.0f}")
    m[2].metric("Emissions (t CO2eq)", f"{summary.get('emissions_kg', 0) / 1000:,.2f}")
    m[3].metric("kg CO2eq/GPU-h", f"{summary.get('kg_per_gpu_hour', 0):.4f}")
    m[4].metric("Bids accepted", f"{summary.get('accepted', 0)}/{summary.get('bids', 0)}")

st.subheader("Placements by site (Gantt)")
if result.placements.is_empty():
    st.info("No job was placed in this clearing.")
else:
    bars = gbui.hour_text(gantt_rows(result.placements), "start_utc", "end_utc")
    lanes = int(bars["lane"].max()) + 1  # type: ignore[arg-type]
    sites = bars["site_id"].n_unique()
    st.altair_chart(alt.Chart(bars.to_pandas(), title="Jobs per site over time (UTC)")
                    .mark_bar(cornerRadius=2).encode(
        x=gbui.hour_axis("start_utc", "time (UTC)"), x2="end_utc:T",
        y=alt.Y("site_id:N", title=None), yOffset=alt.YOffset("lane:N", title=None),
        color=alt.Color("member:N", title="member"),
        tooltip=["job:N", "site_id:N", "gpu_type:N", alt.Tooltip("gpus:Q", title="GPUs"),
                 alt.Tooltip("start_utc_text:N", title="start (UTC)"),
                 alt.Tooltip("end_utc_text:N", title="end (UTC, exclusive)"),
                 alt.Tooltip("hours:Q", title="hours"),
                 alt.Tooltip("emissions_kg:Q", title="kg CO2eq", format=",.1f"),
                 alt.Tooltip("payment_eur:Q", title="payment EUR", format=",.2f")],
    ).properties(height=min(1600, 110 + sites * max(24, lanes * 6))), width="stretch")
    gbui.table(result.placements.select("member", "bid_id", "site_id", "gpu_type", "gpus",
                                        "start_utc", "end_utc", "energy_kwh", "emissions_kg",
                                        "energy_cost_eur", "payment_eur", "uplift_eur"),
               "placements_table", start_utc="start", end_utc="end, exclusive")

st.subheader("Utilisation by hour")
use = utilisation_by_hour(result)
if use.is_empty():
    st.info("Utilisation needs the round's capacity, which is not available to you here.")
else:
    st.altair_chart(alt.Chart(gbui.hour_text(use, "hour_utc").to_pandas(),
                              title="GPUs in use / GPUs offered, by GPU type")
                    .mark_line(interpolate="step-after").encode(
        x=gbui.hour_axis(), y=alt.Y("utilisation:Q", title="utilisation (%)",
                                    axis=alt.Axis(format="%")),
        color=alt.Color("gpu_type:N", title="GPU type"),
        tooltip=[alt.Tooltip("hour_utc_text:N", title="hour (UTC)"), "gpu_type:N",
                 alt.Tooltip("gpus_used:Q", title="GPUs in use"),
                 alt.Tooltip("gpus_available:Q", title="GPUs offered"),
                 alt.Tooltip("utilisation:Q", title="utilisation", format=".1%")]),
                    width="stretch")

st.subheader("Capacity prices")
if result.prices.is_empty():
    st.info("This clearing was not priced, so it has no capacity prices.")
else:
    st.altair_chart(gbui.heatmap(price_rows(result.prices), y="pool",
                                 value="capacity_price_eur_per_gpu_hour",
                                 unit="EUR per GPU-hour",
                                 title="Capacity price per pool (site · GPU type) and hour, "
                                       "EUR per GPU-hour"), width="stretch")

st.subheader("Rejected bids")
if result.rejected.is_empty():
    st.info("No bid was rejected (or your role does not see the rejections).")
else:
    reasons = result.rejected["reason"].value_counts().sort("reason").iter_rows()
    st.caption(", ".join(f"{n} {r}" for r, n in reasons))
    gbui.table(result.rejected, "rejected_table", lost_opportunity_eur="lost opportunity "
               "(> 0: rejected paradoxically)")

if summary:
    st.subheader("Against both baselines")
    st.caption(f"Same bids, same carbon price ({summary.get('carbon_price_eur_per_t')} EUR/t "
               "CO2eq); welfare = surplus − carbon fee.")
    gbui.table(baseline_table(summary), "baselines_table", accepted="accepted (bids)",
               rejected="rejected (bids)")

st.subheader("Cost–carbon trade-off")
if not can_what_if:
    st.info("The trade-off curve re-clears the round's bids, which only planners, treasurers "
            "and admins may read.")
    st.stop()
with st.form("sweep"):
    s1, s2 = st.columns([3, 1])
    prices_text = s1.text_input("Carbon prices to sweep (EUR/t CO2eq, comma-separated)",
                                value="0, 100, 400, 1600", key="sweep_prices")
    sweep_limit = s2.number_input("Time limit per solve (s)", min_value=1.0, value=10.0,
                                  key="sweep_limit")
    swept = st.form_submit_button("Sweep carbon prices")
if swept:
    window = (held[1] if held is not None
              else (chosen.window_start_utc, chosen.window_end_utc))
    with st.status("Sweeping carbon prices…", expanded=True) as status, gbui.failing():
        curve = sweep(data.round_market(chosen.round_id), parse_prices(prices_text),
                      float(sweep_limit), window=window,
                      progress=lambda m: status.update(label=f"Sweeping: {m}"))
        status.update(label="Swept", state="complete")
    st.session_state[sweep_key] = curve
curve = st.session_state.get(sweep_key)
if curve is None:
    st.info("Next step: sweep carbon prices to draw the curve (one solve per price).")
else:
    rows = frontier_rows(curve).to_pandas()
    lines = alt.Chart(rows).mark_line(point=True).encode(
        x=alt.X("emissions_t:Q", title="emissions (t CO2eq)"),
        y=alt.Y("surplus_eur:Q", title="surplus (EUR)"),
        color=alt.Color("method:N", title="method"), order="carbon_price_eur_per_t:Q",
        tooltip=[alt.Tooltip("carbon_price_eur_per_t:Q", title="EUR/t CO2eq"), "method:N",
                 alt.Tooltip("surplus_eur:Q", title="surplus EUR", format=",.0f"),
                 alt.Tooltip("emissions_t:Q", title="t CO2eq", format=",.2f")])
    labels = lines.mark_text(dy=-10, fontSize=10).encode(text="carbon_price_eur_per_t:Q")
    layers = [lines, labels]
    point = chosen_point(summary)
    if point["emissions_t"] is not None:
        layers.append(alt.Chart(pl.DataFrame([point]).to_pandas()).mark_point(
            shape="diamond", size=220, color="red", filled=True).encode(
            x="emissions_t:Q", y="surplus_eur:Q",
            tooltip=[alt.Tooltip("carbon_price_eur_per_t:Q", title="chosen EUR/t CO2eq")]))
    st.altair_chart(alt.layer(*layers, title="Surplus against emissions, one point per "
                                             "carbon price (red: the clearing shown above)"),
                    width="stretch")
    gbui.table(curve, "frontier_table", accepted="accepted (bids)",
               gap="gap (fraction of the bound)")

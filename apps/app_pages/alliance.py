"""Alliance: the pooled sites on a map, each grid's carbon intensity and price hour by hour,
and the free GPUs of every pool over a window."""

from datetime import UTC, date, datetime, time, timedelta

import altair as alt
import gbui
import polars as pl
import pydeck as pdk
import streamlit as st

from gridbridge.appdata.alliance import current_hour, map_rows, pool_rows

data = gbui.page("Alliance")

with gbui.failing():
    rounds = data.rounds()
if rounds:
    first, last = rounds[0].window_start_utc, rounds[0].window_end_utc - timedelta(days=1)
    default_signal = rounds[0].carbon_signal
else:
    first = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    last, default_signal = first + timedelta(days=6), "direct"
left, right = st.columns([3, 1])
days = left.date_input("Window (UTC days, both included)", value=(first.date(), last.date()),
                       key="alliance_window")
signal = right.radio("Carbon signal", ("direct", "lifecycle"), horizontal=True,
                     index=0 if default_signal == "direct" else 1, key="alliance_signal",
                     help="Location-based intensity: direct (combustion) or lifecycle.")
if not isinstance(days, tuple) or len(days) != 2:
    st.info("Pick the window's last day too.")
    st.stop()
start_day: date = days[0]
end_day: date = days[1]
start = datetime.combine(start_day, time(), UTC)
end = datetime.combine(end_day, time(), UTC) + timedelta(days=1)

with gbui.failing():
    outlook = data.outlook(start, end, signal)

st.caption(f"Window [{gbui.utc(start)}, {gbui.utc(end)}) · {signal} intensity in gCO2eq/kWh · "
           "prices in EUR/MWh")
if outlook.grid.is_empty() and outlook.capacity.is_empty():
    st.info("No grid or capacity data for this window yet. Next step: pick the window your "
            "site agents reported (gridbridge agent reports each site's free GPUs and its "
            "zone's grid), or start the agents.")

hour = current_hour(outlook, datetime.now(UTC))
hours = outlook.grid["hour_utc"].unique().sort().to_list()
if hour is not None and len(hours) > 1:
    hour = st.select_slider("Map hour (UTC)", options=hours, value=hour,
                            format_func=gbui.utc, key="alliance_hour")
sites = map_rows(outlook, hour)

st.subheader(f"Sites · coloured by grid intensity at {gbui.utc(hour)}")
st.caption("Circle area ∝ pooled GPUs; green = clean grid, red = carbon-intensive, grey = no "
           "data for that hour.")
points = sites.select("site_id", "name", "member", "zone", "lat", "lon", "pooled_gpus",
                      "carbon_g_per_kwh", "price_eur_per_mwh", "radius_m", "color").to_dicts()
for p in points:  # tooltips show text, so the units go in here
    p["intensity"] = ("no data" if p["carbon_g_per_kwh"] is None
                      else f"{p['carbon_g_per_kwh']:,.1f} gCO2eq/kWh")
    p["price"] = ("no data" if p["price_eur_per_mwh"] is None
                  else f"{p['price_eur_per_mwh']:,.2f} EUR/MWh")
deck = pdk.Deck(
    layers=[
        pdk.Layer("ScatterplotLayer", data=points, get_position="[lon, lat]",
                  get_radius="radius_m", get_fill_color="color", opacity=0.75, pickable=True,
                  stroked=True, get_line_color=[40, 40, 40], line_width_min_pixels=1),
        pdk.Layer("TextLayer", data=points, get_position="[lon, lat]", get_text="site_id",
                  get_size=12, get_pixel_offset=[0, -16]),
    ],
    initial_view_state=pdk.ViewState(latitude=35.0, longitude=20.0, zoom=1.1),
    tooltip={"text": "{site_id} ({member}, zone {zone})\n{pooled_gpus} pooled GPUs\n"
                     "{intensity}\n{price}"},
    map_style=None,
)
st.pydeck_chart(deck, height=420)
gbui.table(sites.select("site_id", "name", "member", "zone", "jurisdiction", "pooled_gpus",
                        "pue", "tariff_adder_eur_per_mwh", "carbon_g_per_kwh",
                        "price_eur_per_mwh"),
           "alliance_sites", pooled_gpus="pooled GPUs", pue="PUE",
           tariff_adder_eur_per_mwh="tariff adder",
           carbon_g_per_kwh=f"intensity at {gbui.utc(hour)}",
           price_eur_per_mwh=f"price at {gbui.utc(hour)}")

st.subheader("Grids hour by hour")
if outlook.grid.is_empty():
    st.info("No grid data in this window: the zones' intensity and price arrive with the "
            "site agents' reports.")
else:
    st.altair_chart(gbui.heatmap(
        outlook.grid, y="zone", value="carbon_g_per_kwh", unit="gCO2eq/kWh",
        title=f"Carbon intensity ({signal}), gCO2eq/kWh"), width="stretch")
    spikes = outlook.grid["price_eur_per_mwh"].quantile(0.99)
    st.altair_chart(gbui.heatmap(
        outlook.grid, y="zone", value="price_eur_per_mwh", unit="EUR/MWh",
        title="Wholesale price, EUR/MWh", scheme="blues", top=spikes), width="stretch")
    st.caption(f"Price colours stop at {spikes:,.2f} EUR/MWh (the 99th percentile), so a "
               "spike does not hide the other hours; the tooltip shows every price.")

st.subheader("Free GPUs by site and type")
if outlook.capacity.is_empty():
    st.info("No capacity reported for this window: site agents report their free GPUs.")
else:
    pools = pool_rows(outlook.capacity)
    st.altair_chart(gbui.heatmap(pools, y="pool", value="gpus_available", unit="GPUs",
                                 title="Free GPUs per pool (site · GPU type), GPUs",
                                 scheme="greens"), width="stretch")
    totals = pools.group_by("hour_utc", "gpu_type").agg(
        pl.col("gpus_available").sum()).sort("hour_utc")
    st.altair_chart(alt.Chart(gbui.hour_text(totals, "hour_utc").to_pandas(),
                              title="Free GPUs across the alliance by type, GPUs")
                    .mark_area(opacity=0.8).encode(
                        x=gbui.hour_axis(), y=alt.Y("gpus_available:Q", title="GPUs",
                                                    stack=True),
                        color=alt.Color("gpu_type:N", title="GPU type"),
                        tooltip=[alt.Tooltip("hour_utc_text:N", title="hour (UTC)"),
                                 "gpu_type:N", alt.Tooltip("gpus_available:Q", title="GPUs")]),
                    width="stretch")

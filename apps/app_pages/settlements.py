"""Settlements: per member and per site statements with totals, who pays whom across borders,
the carbon fund and uplift, and the report files exactly as ``gridbridge report`` writes
them (CSV, Parquet, XLSX)."""

import altair as alt
import gbui
import streamlit as st

from gridbridge.appdata.statements import cross_border_cells
from gridbridge.errors import GridBridgeError

MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

data = gbui.page("Settlements")
viewer = data.viewer
if viewer.role == "site":
    st.info("Site tokens have no statements here; treasurers export the site statements.")
    st.stop()

chosen = gbui.round_or_stop(
    data, "No round has been cleared yet, so there is nothing to settle. Next step: run a "
          "round on the Market page (bundle mode: gridbridge clear BUNDLE --out DIR, then "
          "start the app with --clearing DIR).", cleared_only=True)
try:
    tables = data.statements(chosen.round_id)
except GridBridgeError as exc:
    st.info(f"No statements for this round: {exc}")
    st.stop()
# Every table is of this one round: its id would only repeat on every row.
tables = {name: t.drop("round_id", strict=False) for name, t in tables.items()}
st.caption(f"Round {chosen.round_id} · amounts in EUR, + the account receives, − it pays "
           "(the cross-border matrix shows what the payer paid)")

summary = tables.get("alliance_summary")
if summary is not None and summary.height:
    row = summary.row(0, named=True)
    m = st.columns(4)
    m[0].metric("Members paid", f"{row['members_paid_eur']:,.2f} EUR")
    m[1].metric("Sites received", f"{row['sites_received_eur']:,.2f} EUR")
    m[2].metric("Carbon fund inflow", f"{row['carbon_fund_inflow_eur']:,.2f} EUR",
                help="carbon fees: carbon price × attributed emissions")
    m[3].metric("Carbon fund balance", f"{row['carbon_fund_balance_eur']:,.2f} EUR")
    n = st.columns(4)
    n[0].metric("Uplift", f"{row['uplift_eur'] or 0:,.2f} EUR",
                help="what the alliance covers where a bid's payment exceeded its value")
    n[1].metric("Congestion revenue", f"{row['congestion_revenue_eur'] or 0:,.2f} EUR")
    n[2].metric("Ledger lines", f"{row['ledger_lines']:,d}")
    n[3].metric("Ledger sum", f"{row['ledger_sum_cents']:,d} cents",
                help="must be 0: every cent paid is received")

totals = tables.get("member_totals")
if totals is not None:
    st.subheader("Per member" if viewer.sees_alliance else "Your statement")
    gbui.table(totals, "member_totals_table")
lines = tables.get("member_statements")
if lines is not None:
    with st.expander(f"Statement lines ({lines.height})"):
        gbui.table(lines, "member_lines_table")

sites = tables.get("site_statements")
if sites is not None:
    st.subheader("Per site")
    gbui.table(sites, "site_statements_table")

matrix = tables.get("cross_border")
if matrix is not None:
    st.subheader("Who pays whom across borders")
    cells = cross_border_cells(matrix)
    chart = alt.Chart(cells.to_pandas())
    st.altair_chart(
        (chart.mark_rect().encode(
            x=alt.X("site_member:N", title="sites of member"),
            y=alt.Y("payer_member:N", title="payer"),
            color=alt.Color("paid_eur:Q", title="EUR", scale=alt.Scale(scheme="purples")),
            tooltip=["payer_member:N", "site_member:N",
                     alt.Tooltip("paid_eur:Q", title="EUR", format=",.2f")])
         + chart.mark_text(fontSize=11).encode(x="site_member:N", y="payer_member:N",
                                               text=alt.Text("paid_eur:Q", format=",.0f")))
        .properties(height=60 * cells["payer_member"].n_unique(),
                    title="EUR paid by each member (rows) to the sites of each member "
                          "(columns)"), width="stretch")
    gbui.table(matrix, "cross_border_table")

st.subheader("Download")
names = data.report_names(chosen.round_id)
if not names:
    st.info("Your role has no report files to download.")
    st.stop()
fmt = st.radio("Format", sorted({n.rsplit(".", 1)[1] for n in names},
                                key=("csv", "parquet", "xlsx").index),
               horizontal=True, key="download_format",
               help="The same bytes as gridbridge report --format FORMAT writes.")
choices = [n for n in names if n.endswith(f".{fmt}")]
name = choices[0] if len(choices) == 1 else st.selectbox("File", choices, key="download_file")
with gbui.failing():
    content = data.report_file(chosen.round_id, name)
st.download_button(f"Download {name}", content, file_name=f"{chosen.round_id}-{name}",
                   mime=MIME[fmt], key="download_button", type="primary")

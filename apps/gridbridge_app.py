"""GridBridge's Streamlit app: routes to its pages, nothing else.

Run it with ``gridbridge app --bundle DIR [--clearing DIR]`` or ``gridbridge app --exchange
URL --token T`` (or ``streamlit run apps/gridbridge_app.py`` with the environment variables
of :mod:`gridbridge.appdata.config`). The pages (``app_pages/``; a folder named
``pages`` would switch Streamlit to its older multipage mode) draw; their figures come from
:mod:`gridbridge.appdata`.
"""

import streamlit as st

st.set_page_config(page_title="GridBridge", page_icon=":material/bolt:", layout="wide")
st.navigation([
    st.Page("app_pages/alliance.py", title="Alliance", icon=":material/public:", default=True),
    st.Page("app_pages/bids.py", title="Bids", icon=":material/gavel:"),
    st.Page("app_pages/market.py", title="Market", icon=":material/query_stats:"),
    st.Page("app_pages/settlements.py", title="Settlements", icon=":material/account_balance:"),
]).run()

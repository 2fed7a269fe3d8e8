"""Tollgate dashboard: `tollgate dashboard` runs this with `streamlit run` (see cli.py)."""

from __future__ import annotations

import streamlit as st

from dashboards.nav import PAGES, page
from dashboards.settings import data_dir

st.set_page_config(page_title="Tollgate", page_icon=":material/toll:", layout="wide")
navigation = st.navigation([page(name) for name in PAGES])
st.sidebar.caption(f"Data: `{data_dir().resolve()}` (read-only)")
navigation.run()

"""Load tests: the runs (filter by scenario, date, verdict), one run in detail, two runs compared, sweeps."""

from __future__ import annotations

import streamlit as st

from dashboards.data.runs import load_runs, load_sweeps, runs_signature, sweeps_signature
from dashboards.panels.compare import render_compare
from dashboards.panels.run_detail import render_detail
from dashboards.panels.sweep import render_sweeps
from dashboards.settings import data_dir
from dashboards.ui import empty_state, warn_all

VIEWS = ("Runs", "Run detail", "Compare", "Sweeps")
RUN_COLUMNS = ("run_id", "verdict", "scenario", "started", "status", "duration_s", "completed", "failed")
RUN_COLUMNS += ("requests_per_s", "ttft_p95_ms", "e2e_p95_ms", "client_bound")

root = data_dir()
st.title("Load tests")
index = load_runs(str(root), runs_signature(root))
sweeps, sweep_warnings = load_sweeps(str(root), sweeps_signature(root))
warn_all(index.warnings + sweep_warnings)

if index.table.empty and not sweeps:
    empty_state(f"No load-test runs or sweeps in `{root / 'runs'}` yet.", "tollgate load --help")
    st.stop()

wanted = st.query_params.get("view")
default_view = VIEWS.index(wanted) if wanted in VIEWS else (1 if "run" in st.query_params else 0)
view = st.radio("View", VIEWS, index=default_view, horizontal=True, label_visibility="collapsed")

if view == "Runs":
    if index.table.empty:
        empty_state("No load-test runs yet (only sweeps).", "tollgate load --help")
        st.stop()
    runs = index.table
    c1, c2, c3 = st.columns([2, 2, 2])
    scenarios = sorted(runs["scenario"].dropna().unique())
    picked = c1.multiselect("Scenario", scenarios, placeholder="all scenarios")
    verdicts = sorted(runs["verdict"].dropna().unique())
    picked_verdicts = c2.multiselect("Gate verdict", verdicts, placeholder="all verdicts")
    started = runs["started"].dropna()
    if not started.empty:
        lo, hi = started.min().date(), started.max().date()
        dates = c3.date_input("Started between (UTC)", (lo, hi), min_value=lo, max_value=hi)
    shown = runs
    if picked:
        shown = shown[shown["scenario"].isin(picked)]
    if picked_verdicts:
        shown = shown[shown["verdict"].isin(picked_verdicts)]
    if not started.empty and isinstance(dates, tuple) and len(dates) == 2:
        day = shown["started"].dt.date
        shown = shown[day.isna() | ((day >= dates[0]) & (day <= dates[1]))]
    st.caption(f"{len(shown)} of {len(runs)} runs. Select a row to see the run below.")
    table = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="runs_table",
        column_order=RUN_COLUMNS,
        column_config={
            "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.0f"),
            "requests_per_s": st.column_config.NumberColumn("throughput (req/s)", format="%.2f"),
            "ttft_p95_ms": st.column_config.NumberColumn("TTFT p95 (ms)", format="%.0f"),
            "e2e_p95_ms": st.column_config.NumberColumn("E2E p95 (ms)", format="%.0f"),
            "client_bound": st.column_config.CheckboxColumn("client-bound"),
            "verdict": st.column_config.TextColumn("gate"),
        },
    )
    selected = [shown.iloc[i]["run_id"] for i in table.selection.rows if i < len(shown)]
    if selected and selected[0] in index.summaries:
        st.divider()
        render_detail(root, index, selected[0])
    elif selected:
        st.info(f"{selected[0]} has no summary.json yet: it is still running or was interrupted.")
elif view == "Run detail":
    render_detail(root, index)
elif view == "Compare":
    render_compare(root, index)
else:
    render_sweeps(sweeps)

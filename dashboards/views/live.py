"""Live: the monitor store's (or, with --prometheus, Prometheus') time series with a time-range picker and auto-refresh."""

from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.data import source, store
from dashboards.panels.live_specs import GPU_PANELS, PANELS, RANGES, REFRESH
from dashboards.settings import max_points
from dashboards.ui import (
    ago,
    empty_state,
    legend_rows,
    lines,
    monitor_store_or_stop,
    plot,
    style,
    warn_all,
    when,
)

st.title("Live")
src = source.remote()
if src is None:
    src = source.Series(monitor_store_or_stop("The live series are written by the monitors."), False)
try:
    all_targets = list(src.targets()["target"])
except store.StoreError as exc:
    hint = (
        "Is Prometheus running with the config from `tollgate monitor export-prometheus`? Check --prometheus."
        if src.remote
        else "Is `tollgate monitor` writing to it? Check the path given to --data."
    )
    warn_all([f"{exc}. {hint}"])
    st.stop()
if not all_targets:
    if src.remote:
        empty_state(f"{src.label} has no scrape targets.", "tollgate monitor export-prometheus --help")
    else:
        empty_state("The monitor store has no samples yet.", "tollgate monitor --help")
    st.stop()

c1, c2, c3 = st.columns([4, 2, 1])
chosen = c1.multiselect("Targets", all_targets, default=all_targets[:4], placeholder="choose targets")
wanted = st.query_params.get("range")
span_label = c2.selectbox(
    "Time range", list(RANGES), index=list(RANGES).index(wanted) if wanted in RANGES else 1
)
refresh = c3.selectbox("Auto-refresh", list(REFRESH), index=2)


def _line(frame: pd.DataFrame, title: str, split: str | None) -> go.Figure:
    dash = "name" if frame["name"].nunique() > 1 else None
    return lines(
        frame, "ts", "value", color=split or dash, dash=dash if split else None, time_x=True, title=title
    )


@st.fragment(run_every=REFRESH[refresh])
def live_panels(targets: tuple[str, ...], span: int) -> None:
    try:
        _panels(targets, span)
    except store.StoreError as exc:  # e.g. the store was replaced or damaged while the page is open
        warn_all([f"{exc}. The next refresh tries again."])


def _panels(targets: tuple[str, ...], span: int) -> None:
    end = src.data_end() or time.time()
    stale = time.time() - end
    st.caption(
        f"Newest sample {when(end)} ({ago(end)}); refreshed {when(time.time())}. Lines are averaged into at most {max_points() or 'all'} points. Source: {src.label}."
    )
    if stale > 300:
        st.info(
            f"The newest sample is {ago(end)}: showing history up to then. "
            + (
                "Check that Prometheus is scraping."
                if src.remote
                else "Start `tollgate monitor` for live data."
            )
        )
    names = tuple(n for spec in PANELS.values() for n in spec[0]) + tuple(
        spec[0] for spec in GPU_PANELS.values()
    )
    data = src.series(names, targets, end - span, end, max_points())
    if data.empty:
        st.info(
            f"No samples for {', '.join(targets)} in the last {span_label}. Try a longer time range, "
            "or check on the Overview whether the targets are up."
        )
        return
    _server_panels(data, targets)
    _gpu_panels(data, targets)


def _server_panels(data: pd.DataFrame, targets: tuple[str, ...]) -> None:
    """The PANELS grid, two a row; a target's lines split by colour when several are shown."""
    split = "target" if len(targets) > 1 else None
    figures = {}
    for title, (labels, y_title, scale) in PANELS.items():
        frame = data[data["name"].isin(list(labels))]
        if not frame.empty:
            frame = frame.assign(value=frame["value"] * scale, name=frame["name"].map(labels))
            figures[title] = (_line(frame, title, split), y_title)
    rows = max((legend_rows(fig) for fig, _ in figures.values()), default=0)
    cols = st.columns(2)
    for i, title in enumerate(PANELS):
        with cols[i % 2]:
            if title not in figures:
                st.caption(f"{title}: no samples (the target does not export it).")
                continue
            fig, y_title = figures[title]
            plot(style(fig, "time (UTC)", y_title, height=280, rows=rows), key=f"live_{i}")


def _gpu_panels(data: pd.DataFrame, targets: tuple[str, ...]) -> None:
    """One line per GPU (target and dcgm `gpu` label) in each of GPU_PANELS."""
    st.subheader("GPUs")
    gpu = data[data["name"].str.startswith("gpu_")]
    if gpu.empty:
        st.info(
            "No GPU on these targets: no GPU series were scraped (CPU host, or no dcgm-exporter / `tollgate monitor` "
            "GPU exporter running next to the server).",
            icon=":material/memory:",
        )
        return
    without = sorted(set(targets) - set(gpu["target"]))
    if without:
        st.caption(f"No GPU series for: {', '.join(without)}.")
    gpu = gpu.assign(
        gpu=gpu["target"]
        + " gpu "
        + gpu["labels"].str.extract(r'"gpu":\s*"([^"]+)"', expand=False).fillna("?")
    )
    cols = st.columns(3)
    for i, (title, (name, y_title, scale)) in enumerate(GPU_PANELS.items()):
        frame = gpu[gpu["name"] == name].assign(value=lambda d, s=scale: d["value"] * s)
        with cols[i]:
            fig = lines(frame, "ts", "value", color="gpu", time_x=True, title=title)
            plot(style(fig, "time (UTC)", y_title, height=280), key=f"gpu_{i}")


if not chosen:
    st.info("Choose at least one target.")
else:
    live_panels(tuple(chosen), RANGES[span_label])

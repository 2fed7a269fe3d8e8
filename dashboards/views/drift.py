"""Drift: per-feature verdicts and scores over time, reference vs live distributions, multivariate test."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from dashboards.data.drift import (
    drift_signature,
    feature_table,
    histogram_frame,
    load_drift,
    scores_over_time,
)
from dashboards.settings import data_dir
from dashboards.ui import empty_state, lines, plot, style, warn_all, when

MAX_REPORT_BYTES = 50 * 2**20
OVERLAY_COLORS = {"reference": "#7f7f7f", "live": "#1f77b4"}

root = data_dir()
st.title("Drift")
signature = drift_signature(root)
index = load_drift(str(root), signature)
warn_all(index.warnings)
if not index.results:
    empty_state(
        f"No drift checks in `{root / 'drift'}` yet.",
        "tollgate drift --help",
        "Build a reference profile, then check live traffic against it.",
    )
    st.stop()

checks = {r["check_id"]: r for r in reversed(index.results)}
check_id = st.selectbox("Check", list(checks), format_func=lambda c: f"{c} ({when(checks[c]['created_at'])})")
result = checks[check_id]
window = result.get("window") or {}
settings = result.get("settings") or {}

c = st.columns(4)
c[0].metric("Verdict", "DRIFT" if result.get("drift_detected") else "no drift")
c[1].metric("Drifted features", sum(1 for f in result["features"] if f.get("drift")))
c[2].metric("Live requests", f"{window.get('n_live', 'n/a')}")
c[3].metric("Reference requests", f"{(result.get('profile') or {}).get('n_reference', 'n/a')}")
st.caption(
    f"window {when(window.get('start'))} to {when(window.get('end'))} · alpha {settings.get('alpha', '?')} · "
    f"correction {settings.get('correction', '?')} · skipped lines {window.get('n_skipped_lines', 0)}"
)
check_warnings = [str(w) for w in result.get("warnings") or []]
if check_warnings:
    with st.expander(f"{len(check_warnings)} warning(s) from this check", icon=":material/warning:"):
        for w in check_warnings:
            st.markdown(f"- {w}")


def _color_decision(value: str) -> str:
    if value == "drift":
        return "background-color: rgba(230, 80, 80, 0.25)"
    return "color: gray" if str(value).startswith("undecided") else ""


st.subheader("Per-feature verdicts")
st.dataframe(
    feature_table(result).style.map(_color_decision, subset=["decision"]).format(precision=4, na_rep="n/a"),
    hide_index=True,
)

left, right = st.columns(2)
with left:
    st.subheader("Scores over time")
    scores = scores_over_time(str(root), signature).dropna(subset=["effect_size"])
    if scores.empty:
        st.info("No effect sizes recorded yet.")
    else:
        fig = lines(scores, "ts", "effect_size", color="feature", time_x=True)
        fig.update_traces(mode="lines+markers")
        drifted = scores[scores["decision"] == "drift"]
        fig.add_scatter(
            x=drifted["ts"] * 1000,
            y=drifted["effect_size"],
            mode="markers",
            name="drift decided",
            marker={"symbol": "x", "size": 11, "color": "#d62728"},
        )
        plot(style(fig, "check time (UTC)", "effect size (unitless)", height=380), key="scores")
with right:
    st.subheader("Reference vs live")
    plottable = [
        f["feature"] for f in result["features"] if histogram_frame(result, f["feature"]) is not None
    ]
    if not plottable:
        st.info("This check recorded no histograms (reference_hist / live_hist) to plot.")
    else:
        feature = st.selectbox("Feature", plottable)
        frame, kind = histogram_frame(result, feature)
        fig = go.Figure(
            [
                go.Bar(x=g["bin"], y=g["share_pct"], name=name, marker_color=OVERLAY_COLORS[name])
                for name, g in frame.groupby("distribution", sort=False)
            ]
        )
        fig.update_layout(barmode="group")
        plot(
            style(
                fig,
                f"{feature} ({'bin' if kind == 'numeric' else 'category'})",
                "share of requests (%)",
                height=380,
            ),
            key="overlay",
        )

st.subheader("Multivariate test")
multi = result.get("multivariate")
if not isinstance(multi, dict):
    st.info("This check ran no multivariate test.")
else:
    m = st.columns(5)
    m[0].metric("Method", str(multi.get("method", "?")))
    m[1].metric("Decision", "DRIFT" if multi.get("drift") else "no drift")
    for col, key in zip(m[2:], ("statistic", "p_value", "effect_size"), strict=False):
        value = multi.get(key)
        col.metric(key.replace("_", " "), f"{value:.4g}" if isinstance(value, (int, float)) else "n/a")

st.subheader("Evidently report")
report = result.get("evidently_report")
if not report:
    st.caption("No Evidently report for this check (run `tollgate drift --help` to see how to make one).")
else:
    path = (
        Path(report)
        if Path(report).is_absolute() or Path(report).exists()
        else root / "drift" / Path(report).name
    )
    if not path.is_file():
        st.warning(f"Evidently report `{report}` is recorded but the file is missing.")
    elif path.stat().st_size > MAX_REPORT_BYTES:
        st.markdown(f"Open `{path.resolve()}` in a browser (too large to serve here).")
    else:
        st.download_button(
            "Open the Evidently report (HTML)",
            path.read_bytes(),
            file_name=path.name,
            mime="text/html",
            icon=":material/open_in_new:",
        )
        st.caption(f"`{path.resolve()}`")

"""One load-test run: headline figures, validity, config, percentiles, CDFs, timeline, errors, gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.data.analysis import errors_by_reason, latency_cdf, timeline
from dashboards.data.runs import RunDataError, RunIndex
from dashboards.redact import redact, redact_tree
from dashboards.settings import max_points
from dashboards.ui import lines, plot, style, verdict_badge, when
from tollgate.contracts.run_folder import PERCENTILE_KEYS, requests_file

VALIDITY_HELP = {
    "client_bound": "the load generator ran out of CPU, so latencies include client delay",
    "estimated_tokens": "output tokens were counted by the client because the server sent no usage",
}


def pick_run(index: RunIndex, label: str, key: str, default: str | None = None) -> str | None:
    complete = [r for r in index.table["run_id"] if r in index.summaries]
    if not complete:
        return None
    wanted = default or st.query_params.get("run")
    pos = complete.index(wanted) if wanted in complete else 0
    return st.selectbox(label, complete, index=pos, key=key)


def requests_source(root: Path, run_id: str) -> tuple[str, float] | None:
    path = requests_file(root / "runs" / run_id)
    return None if path is None else (str(path), path.stat().st_mtime)


def percentiles_table(summary: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for name, block in (summary.get("metrics") or {}).items():
        if isinstance(block, dict):
            rows.append({"metric": name, **{k: block.get(k) for k in PERCENTILE_KEYS}})
    return pd.DataFrame(rows)


def cdf_figure(cdf: pd.DataFrame, color: str = "metric") -> go.Figure:
    fig = lines(cdf, "latency_ms", "fraction", color=color)
    fig.update_traces(hovertemplate="%{x:.1f} ms: %{y:.2%}")
    fig.update_xaxes(type="log")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.01])
    return style(fig, "latency (ms, log scale)", "requests at or below (%)", height=360)


def render_detail(root: Path, index: RunIndex, run_id: str | None = None) -> None:
    """One run: the given one, else the one picked in a select box (default: ?run= or newest)."""
    run_id = run_id or pick_run(index, "Run", "detail_run")
    if run_id is None:
        st.info(
            "No complete run yet: run folders without summary.json are still running or were interrupted."
        )
        return
    s, gate = index.summaries[run_id], index.gates.get(run_id)
    cfg = s.get("config") or {}
    _headline(run_id, s, gate)
    _validity(s)
    with st.expander("Config and environment"):
        st.json(
            {
                "config": redact_tree(cfg),
                "environment": redact_tree(s.get("environment")),
                "server": redact_tree(s.get("server")),
            }
        )

    st.markdown("#### Latency percentiles (ms)")
    st.dataframe(
        percentiles_table(s),
        hide_index=True,
        column_config={k: st.column_config.NumberColumn(k, format="%.1f") for k in PERCENTILE_KEYS[:-1]},
    )

    source = requests_source(root, run_id)
    if source is None:
        st.warning(f"{root / 'runs' / run_id}: no requests.parquet or requests.csv, so no per-request plots.")
    else:
        try:
            _per_request_plots(source)
        except RunDataError as exc:
            st.warning(f"{exc}. The summary above is still valid.", icon=":material/warning:")
    if gate:
        _gate_verdict(gate)


def _headline(run_id: str, s: dict[str, Any], gate: dict[str, Any] | None) -> None:
    """The run's name, what it ran against, and its headline counts and rates."""
    cfg = s.get("config") or {}
    st.subheader(f"{run_id}")
    st.caption(
        f"scenario **{cfg.get('scenario', 'unknown')}** · status **{s['status']}** · started {when(s['started_at'])} · "
        f"{s['duration_s']:.0f} s · target {redact(cfg.get('target') or (s.get('server') or {}).get('url', ''))}"
    )
    goodput = s["goodput"].get("requests_per_s") if isinstance(s["goodput"], dict) else s["goodput"]
    cols = st.columns(6)
    cols[0].metric("Completed", f"{s['requests']['completed']:,}")
    cols[1].metric("Failed", f"{s['requests']['failed']:,}")
    cols[2].metric("Throughput (req/s)", f"{s['throughput']['requests_per_s']:.2f}")
    cols[3].metric("Output (tokens/s)", f"{s['throughput']['output_tokens_per_s']:.0f}")
    cols[4].metric("Goodput (req/s)", f"{goodput:.2f}" if isinstance(goodput, (int, float)) else "n/a")
    cols[5].metric("Gate", (gate or {}).get("verdict", "not gated").upper())


def _validity(s: dict[str, Any]) -> None:
    """One error per validity flag that is set, or one line saying they are all clear."""
    flags = {k: v for k, v in (s.get("validity") or {}).items() if isinstance(v, bool)}
    bad = [k for k, v in flags.items() if v]
    for k in bad:
        st.error(
            f"Validity: **{k}** is set: {VALIDITY_HELP.get(k, 'see the run report')}.",
            icon=":material/error:",
        )
    if not bad:
        st.success(
            f"Validity flags all clear ({', '.join(flags) or 'none recorded'}).",
            icon=":material/check_circle:",
        )


def _gate_verdict(gate: dict[str, Any]) -> None:
    """gate.json next to the run: its verdict, its problem if any, and its checks."""
    st.markdown(f"#### Gate verdict {verdict_badge(gate.get('verdict'))}")
    if gate.get("problem"):
        st.warning(f"Gate: {gate['problem']}")
    checks = gate.get("checks")
    if isinstance(checks, list) and checks:
        st.dataframe(pd.json_normalize(checks), hide_index=True)
    elif isinstance(checks, dict):
        st.json(checks)


def _per_request_plots(source: tuple[str, float]) -> None:
    points = max_points()
    left, right = st.columns(2)
    with left:
        st.markdown("#### Latency CDFs")
        plot(cdf_figure(latency_cdf(*source, points)), key="cdf")
    with right:
        st.markdown("#### Errors by reason")
        errors = errors_by_reason(*source)
        if errors.empty:
            st.success("No failed requests.")
        else:
            fig = go.Figure(
                go.Bar(
                    x=errors["reason"],
                    y=errors["requests"],
                    customdata=errors["share_pct"],
                    hovertemplate="%{x}: %{y} (%{customdata:.2f}% of requests)",
                )
            )
            plot(style(fig, "error reason", "failed requests (count)", height=360), key="errors")
    tl = timeline(*source, points)
    if tl.empty:
        return
    panels = (
        (
            "Throughput",
            "requests/s",
            (("completed_per_s", "completed", "#1f77b4"), ("errors_per_s", "failed", "#d62728")),
        ),
        (
            "Output tokens",
            "output tokens/s",
            (("output_tokens_per_s", "output tokens", "#2ca02c"),),
        ),
        ("Concurrency", "requests in flight (count)", (("in_flight", "in flight", "#9467bd"),)),
    )
    for column, (title, y_title, series) in zip(st.columns(3), panels, strict=True):
        fig = go.Figure(
            [
                go.Scatter(x=tl["elapsed_s"], y=tl[c], name=n, mode="lines", line={"color": k})
                for c, n, k in series
            ]
        )
        fig.update_layout(title=title)
        with column:
            plot(style(fig, "time since start (s)", y_title, rows=1), key=title)

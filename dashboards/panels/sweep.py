"""Capacity sweeps: the throughput-latency curve with the knee (highest rate meeting the SLO) marked."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.ui import plot, style, when

# sweep.json leaves the per-point field names to loadgen; these are the spellings we accept, in order.
THROUGHPUT_KEYS = ("requests_per_s", "throughput.requests_per_s", "achieved_rate_per_s", "throughput_rps")
PREFERRED_LATENCY = ("ttft_p95_ms", "ttft_p99_ms", "metrics.ttft_ms.p95", "e2e_p95_ms", "e2e_p99_ms")
OFFERED_KEYS = ("offered_rate_per_s", "throughput.offered_rate_per_s", "rate_per_s", "users")


def _first(frame: pd.DataFrame, keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in frame.columns), None)


def latency_columns(points: pd.DataFrame) -> list[str]:
    return [
        c
        for c in points.columns
        if c.endswith("_ms") or (c.startswith("metrics.") and c.endswith((".p95", ".p99", ".p50")))
    ]


def latency_label(column: str) -> str:
    """'ttft_p99_ms' or 'metrics.ttft_ms.p99' -> 'TTFT p99'."""
    words = column.removeprefix("metrics.").replace("_ms", "").replace(".", " ").replace("_", " ").split()
    return " ".join(w.upper() if w in ("ttft", "e2e", "tpot", "itl") else w for w in words)


def knee_index(sweep: dict[str, Any], points: pd.DataFrame, offered: str | None) -> int | None:
    """Row of the knee: an index, {"index": i}, or a dict naming the knee's run_id / load / rate."""
    knee = sweep.get("knee")
    if isinstance(knee, bool) or knee is None:
        return None
    if isinstance(knee, int):
        return knee if 0 <= knee < len(points) else None
    if not isinstance(knee, dict):
        return None
    if isinstance(knee.get("index"), int) and 0 <= knee["index"] < len(points):
        return knee["index"]
    for key in ("run_id", "load", offered, "requests_per_s"):
        if key and key in points.columns and knee.get(key) is not None:
            hits = points.index[points[key] == knee[key]]
            if len(hits):
                return int(hits[0])
    return None


def render_sweeps(sweeps: dict[str, dict[str, Any]]) -> None:
    if not sweeps:
        st.info(
            "No capacity sweeps yet. Run `tollgate sweep --help` to find the highest rate that meets the SLO."
        )
        return
    sweep_id = st.selectbox("Sweep", list(sweeps), key="sweep")
    sweep = sweeps[sweep_id]
    points = pd.json_normalize([p for p in sweep["points"] if isinstance(p, dict)])
    x, offered = _first(points, THROUGHPUT_KEYS), _first(points, OFFERED_KEYS)
    lat = latency_columns(points)
    if x is None or not lat:
        st.warning(
            f"Sweep {sweep_id}: its points have no throughput ({' / '.join(THROUGHPUT_KEYS)}) or latency (*_ms) field."
        )
        st.dataframe(points, hide_index=True)
        return
    preferred = next((c for c in PREFERRED_LATENCY if c in lat), lat[0])
    y = st.selectbox("Latency", lat, index=lat.index(preferred), key="sweep_y")
    st.caption(
        f"mode **{sweep.get('mode', '?')}** · {len(points)} steps · created {when(sweep.get('created_at'))}"
    )
    passed = next((points[c] for c in ("passed", "meets_slo") if c in points.columns), None)
    k = knee_index(sweep, points, offered)
    fig = sweep_figure(sweep, points, (x, y), offered, passed, k)
    plot(
        style(fig, "achieved throughput (requests/s)", f"{latency_label(y)} (ms)", height=420),
        key="sweep_curve",
    )
    if passed is not None:
        st.caption("Green steps met every SLO check, red ones failed.")
    if sweep.get("stopped_because"):
        st.caption(f"Stopped because {sweep['stopped_because']}.")
    if k is None:
        st.caption("No knee recorded: no step met the SLO, or the sweep stopped early.")
    else:
        st.metric("Capacity at the knee", f"{points[x].iloc[k]:.2f} req/s")
    render_capacity(sweep.get("capacity"))
    st.dataframe(points, hide_index=True)


def sweep_figure(
    sweep: dict[str, Any],
    points: pd.DataFrame,
    axes: tuple[str, str],
    offered: str | None,
    passed: pd.Series | None,
    k: int | None,
) -> go.Figure:
    """The throughput-latency curve: steps coloured by SLO pass/fail, the knee starred, the SLO line."""
    x, y = axes
    fig = go.Figure()
    hover = points[offered].map(lambda v: f"offered {v:g}/s") if offered else None
    colors = None if passed is None else ["#2ca02c" if ok else "#d62728" for ok in passed.fillna(False)]
    fig.add_scatter(
        marker={"color": colors, "size": 9},
        x=points[x],
        y=points[y],
        mode="lines+markers",
        name="sweep step",
        text=hover,
        hovertemplate="%{x:.2f} req/s, %{y:.0f} ms<br>%{text}",
    )
    if k is not None:
        fig.add_scatter(
            x=[points[x].iloc[k]],
            y=[points[y].iloc[k]],
            mode="markers",
            name="knee",
            marker={"symbol": "star", "size": 18, "color": "#d62728"},
            hovertemplate="knee: %{x:.2f} req/s, %{y:.0f} ms",
        )
        fig.add_annotation(
            x=points[x].iloc[k],
            y=points[y].iloc[k],
            text=f"knee {points[x].iloc[k]:.1f} req/s",
            showarrow=True,
            arrowhead=2,
            ay=-40,
        )
    slo = sweep.get("slo") if isinstance(sweep.get("slo"), dict) else {}
    limit = slo.get(y.replace("metrics.", "").replace(".", "_"), slo.get(y))
    if isinstance(limit, (int, float)):
        fig.add_hline(y=limit, line_dash="dash", line_color="gray", annotation_text=f"SLO {limit:g} ms")
    fig.update_layout(title="Throughput vs latency")
    return fig


def render_capacity(block: Any) -> None:
    """The sweep's capacity plan (`tollgate sweep --target-rate R --price-per-hour P`), when it has one."""
    if not isinstance(block, dict):
        return
    st.subheader("Capacity and cost")
    if not block.get("feasible"):
        st.warning(f"No capacity plan: {block.get('reason', 'unknown reason')}.")
        return

    def num(key: str, fmt: str) -> str:
        value = block.get(key)
        return "-" if not isinstance(value, (int, float)) else format(value, fmt)

    cols = st.columns(4)
    cols[0].metric("Replicas needed", num("replicas", "d"))
    cols[1].metric("Output tokens/s per replica", num("output_tokens_per_s_per_replica", ".1f"))
    cols[2].metric("Cost per 1M output tokens", num("cost_per_million_output_tokens", ".4f"))
    cols[3].metric("Cost per 1M input tokens", num("cost_per_million_input_tokens", ".4f"))
    st.caption(
        f"For {block.get('target_rate_per_s')} req/s at {num('headroom', '.0%')} headroom, "
        f"{num('capacity_per_replica_rps', '.2f')} req/s per replica at the SLO, "
        f"{num('price_per_replica_hour', 'g')} per replica-hour. "
        "Assumes " + "; ".join(str(a) for a in block.get("assumptions", [])) + "."
    )

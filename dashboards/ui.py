"""Small shared pieces of the pages: empty states, warnings, plots with units, times."""

from __future__ import annotations

import time
from collections.abc import Iterable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.settings import data_dir

SAMPLE_HINT = "For a tour with sample data: `python -m dashboards.sample_data /tmp/tollgate-sample` then `tollgate dashboard --data /tmp/tollgate-sample`."


def empty_state(what: str, command: str, why: str = "") -> None:
    """What is missing and the command that produces it."""
    st.info(
        f"{what}{(' ' + why) if why else ''}\n\nTo get data, run `{command}`.\n\n{SAMPLE_HINT}",
        icon=":material/info:",
    )


def monitor_store_or_stop(why: str) -> str:
    """Path of the monitor store; when it is missing, say how to create it and end the page."""
    db = data_dir() / "monitor.db"
    if not db.exists():
        empty_state(f"No monitor store at `{db}`.", "tollgate monitor --help", why)
        st.stop()
    return str(db)


def section(title: str, render, hint: str = "") -> None:
    """Render one section under its subheader; a source that fails (StoreError) warns, naming it and
    `hint`, and the other sections still render."""
    from dashboards.data.store import StoreError

    st.subheader(title)
    try:
        render()
    except StoreError as exc:
        warn_all([f"{title}: {exc}{'. ' + hint if hint else ''}"])


ALERT_COLORS = {"firing": "#d62728", "pending": "#ff7f0e", "resolved": "#7f7f7f", "suppressed": "#7f7f7f"}


def alert_timeline(episodes: pd.DataFrame, start: pd.Series, end: pd.Series, key: str) -> None:
    """One lane per rule and target, a bar per episode (epoch-second `start`/`end`), coloured by state."""
    import plotly.express as px

    timeline = episodes.assign(
        start=pd.to_datetime(start, unit="s", utc=True),
        finish=pd.to_datetime(end, unit="s", utc=True),
        lane=episodes["rule"] + " · " + episodes["target"],
    )
    if timeline.empty:
        return
    fig = px.timeline(
        timeline, x_start="start", x_end="finish", y="lane", color="state", color_discrete_map=ALERT_COLORS
    )
    height = 120 + 28 * timeline["lane"].nunique()
    plot(style(fig, "time (UTC)", "alert rule · target", height=height), key=key)


def warn_all(messages: Iterable[str]) -> None:
    for message in messages:
        st.warning(message, icon=":material/warning:")


def legend_rows(fig: go.Figure) -> int:
    """Rows a horizontal legend needs in a half-width chart (~80 characters a row)."""
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    return 0 if len(names) < 2 else -(-sum(len(n) + 6 for n in names) // 80)


def style(
    fig: go.Figure, x_title: str, y_title: str, height: int = 300, rows: int | None = None
) -> go.Figure:
    """Axis titles (with units), a unified hover, and the legend in rows between title and plot,
    with room made for it so it never covers the title, the toolbar or the lines. Charts side by
    side pass the same `rows` so their plot areas line up."""
    rows = legend_rows(fig) if rows is None else rows
    fig.update_layout(
        height=height + 20 * rows,
        margin={"l": 10, "r": 10, "t": 48 + 20 * rows, "b": 10},
        hovermode="x unified",
        title={"y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 8}, "font": {"size": 15}},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "x": 0,
            "title": None,
            "font": {"size": 11},
        },
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def lines(
    frame: pd.DataFrame,
    x: str,
    y: str,
    color: str | None = None,
    dash: str | None = None,
    time_x: bool = False,
    title: str | None = None,
) -> go.Figure:
    """One line per (color, dash) group, built from plain dicts: plotly express costs ~0.3 s a
    figure and datetime x values ~0.1 s to serialise, so times go out as epoch milliseconds."""
    keys = [k for k in (color, dash) if k]
    groups = frame.groupby(keys, sort=True) if keys else [((), frame)]
    colors = (
        {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(sorted(frame[color].unique()))} if color else {}
    )
    dashes = {v: DASHES[i % len(DASHES)] for i, v in enumerate(sorted(frame[dash].unique()))} if dash else {}
    traces = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        parts = dict(zip(keys, key, strict=False))
        xs = g[x].to_numpy(dtype=float) * 1000 if time_x else g[x].to_numpy()
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": g[y].to_numpy(dtype=float),
                "name": " · ".join(str(v) for v in key) or y,
                "line": {"color": colors.get(parts.get(color)), "dash": dashes.get(parts.get(dash), "solid")},
            }
        )
    fig = go.Figure(traces)
    if time_x:
        fig.update_xaxes(type="date")
    if title:
        fig.update_layout(title=title)
    return fig


def plot(fig: go.Figure, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config={"displaylogo": False})


def when(ts: float | None) -> str:
    if ts is None or pd.isna(ts):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(ts)))


def ago(ts: float | None, now: float | None = None) -> str:
    if ts is None or pd.isna(ts):
        return "never"
    return duration((now or time.time()) - float(ts)) + " ago"


def duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return ""
    s = max(float(seconds), 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.0f} s"


VERDICT_ICONS = {
    "pass": ":green[PASS]",
    "fail": ":red[FAIL]",
    "invalid": ":orange[INVALID]",
    "error": ":orange[ERROR]",
}


def verdict_badge(verdict: str | None) -> str:
    return VERDICT_ICONS.get(str(verdict).lower(), f":gray[{str(verdict).upper()}]")

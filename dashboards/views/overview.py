"""Overview: target health, firing alerts, the latest gate and drift verdicts, each linking to its page."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboards.data import alerts as alert_data
from dashboards.data import prometheus, source, store
from dashboards.data.drift import drift_signature, load_drift
from dashboards.data.runs import load_runs, runs_signature
from dashboards.nav import page
from dashboards.redact import redact
from dashboards.settings import alertmanager_url, data_dir
from dashboards.ui import ago, duration, empty_state, verdict_badge, warn_all, when

TREND_S, TREND_POINTS = 3600, 60  # request-rate sparkline: the last hour, one point a minute
HEALTH = ("up", "request_rate", "ttft_p95_s", "error_rate", "rejected_rate", "kv_cache_usage", "gpu_util_pct")

root = data_dir()
db = root / "monitor.db"
st.title("Overview")


def health_table(src: source.Series, targets: pd.DataFrame) -> pd.DataFrame:
    values = src.latest(HEALTH, tuple(targets["target"]))
    means = (
        values.groupby(["target", "name"])["value"].mean().unstack() if not values.empty else pd.DataFrame()
    )
    out = targets.set_index("target")[["up", "last_scrape", "last_error"]].join(
        means.drop(columns="up", errors="ignore")
    )
    out = out.reindex(columns=["up", "last_scrape", *HEALTH[1:], "last_error"])
    out["up"] = out["up"].map({1: "up", 0: "DOWN"}).fillna("unknown")
    out["last_scrape"] = out["last_scrape"].map(ago)
    out["ttft_p95_s"] *= 1000
    out["error_rate"] *= 100
    out["rejected_rate"] *= 100
    out["kv_cache_usage"] *= 100
    out["last_error"] = out["last_error"].map(lambda e: redact(e) if isinstance(e, str) else "")
    end = src.data_end() or time.time()
    trend = src.series(("request_rate",), tuple(targets["target"]), end - TREND_S, end, TREND_POINTS)
    out["trend"] = trend.groupby("target")["value"].apply(lambda v: v.fillna(0).round(3).tolist())
    return out.reset_index()


def show_targets(src: source.Series, targets: pd.DataFrame) -> None:
    st.dataframe(
        health_table(src, targets),
        hide_index=True,
        column_order=["target", "up", "last_scrape", "request_rate", "trend", *HEALTH[2:], "last_error"],
        column_config={
            "target": st.column_config.TextColumn("target", width=140),
            "up": st.column_config.TextColumn("up", width=50),
            "last_scrape": st.column_config.TextColumn("last scrape", width=85),
            "request_rate": st.column_config.NumberColumn("req/s", format="%.2f", width=70),
            "trend": st.column_config.LineChartColumn("req/s, last hour", y_min=0, width=120),
            "ttft_p95_s": st.column_config.NumberColumn("TTFT p95 (ms)", format="%.0f", width=95),
            "error_rate": st.column_config.NumberColumn("errors (%)", format="%.2f", width=80),
            "rejected_rate": st.column_config.NumberColumn("refused (%)", format="%.2f", width=80),
            "kv_cache_usage": st.column_config.ProgressColumn(
                "KV cache (%)", format="%.0f%%", min_value=0, max_value=100, width=100
            ),
            "gpu_util_pct": st.column_config.ProgressColumn(
                "GPU util (%)", format="%.0f%%", min_value=0, max_value=100, width=100
            ),
            "last_error": st.column_config.TextColumn("last error", width=120),
        },
    )
    st.caption(
        "GPU util is the mean over the target's GPUs; empty means no GPU series (CPU host or no exporter)."
    )


def remote_firing(prometheus_url: str) -> pd.DataFrame:
    """Firing alerts in the store's episode shape, from Alertmanager when given, else Prometheus."""
    am = alertmanager_url()
    if am:
        alerts = prometheus.alertmanager_alerts(am)
        silenced = alerts["state"] == "suppressed"
    else:
        alerts = prometheus.prometheus_alerts(prometheus_url)
        alerts = alerts[alerts["state"] == "firing"]
        silenced = pd.Series(False, index=alerts.index)
    return pd.DataFrame(
        {
            "rule": alerts["rule"],
            "target": alerts["target"],
            "severity": alerts["severity"],
            "firing_at": alerts["since"],
            "summary": alerts["summary"],
            "silenced": silenced,
        }
    )


st.subheader("Targets")
firing = pd.DataFrame()
remote = source.remote()
if remote is not None:
    try:
        targets = remote.targets()
        if targets.empty:
            empty_state(f"{remote.label} has no scrape targets.", "tollgate monitor export-prometheus --help")
        else:
            show_targets(remote, targets)
        firing = remote_firing(remote.where)
    except store.StoreError as exc:
        warn_all([f"{exc}. Start Prometheus with the config from `tollgate monitor export-prometheus`."])
elif not db.exists():
    empty_state(
        f"No monitor store at `{db}`.",
        "tollgate monitor --help",
        "Health, live series and alerts come from it.",
    )
else:
    try:
        path = str(db)
        targets = store.targets(path)
        if targets.empty:
            empty_state("The monitor store has no targets yet.", "tollgate monitor --help")
        else:
            show_targets(source.local(), targets)
        changes = alert_data.state_changes(path)
        eps = alert_data.episodes(changes, time.time())
        firing = (
            alert_data.mark_silenced(eps[eps["state"] == "firing"], path, time.time())
            if not eps.empty
            else eps
        )
    except store.StoreError as exc:
        warn_all([f"{exc}. Target health and alerts are not shown; the rest of the page is."])
st.page_link(page("live"), label="Live series", icon=":material/timeline:")

st.subheader("Firing alerts")
if firing.empty:
    st.success("No alert is firing.", icon=":material/check_circle:")
else:
    for a in firing.itertuples():
        sev = "red" if a.severity == "critical" else "orange"
        st.markdown(
            f":{sev}[**{a.rule}**] {a.target} · {a.severity} · firing for {duration(time.time() - a.firing_at)}"
            f" · {a.summary or ''}{' · :gray[silenced]' if a.silenced else ''}"
        )
st.page_link(page("alerts"), label="Alert history, silences, notifications", icon=":material/notifications:")

gate_col, drift_col = st.columns(2)
with gate_col:
    st.subheader("Latest gate verdict")
    index = load_runs(str(root), runs_signature(root))
    gated = [(g.get("created_at") or 0, run_id, g) for run_id, g in index.gates.items()]
    if not gated:
        st.info("No gated run yet. Run `tollgate load --help`, then `tollgate gate --help`.")
    else:
        created, run_id, gate = max(gated, key=lambda t: t[0])
        st.markdown(f"## {verdict_badge(gate.get('verdict'))}")
        st.markdown(f"run `{run_id}` · baseline `{gate.get('baseline_run_id') or 'none'}` · {when(created)}")
        st.page_link(
            page("load_tests"),
            label="Open the run",
            icon=":material/speed:",
            query_params={"run": run_id, "view": "Run detail"},
        )
    warn_all(index.warnings[:3])
with drift_col:
    st.subheader("Latest drift verdict")
    drift = load_drift(str(root), drift_signature(root))
    if not drift.results:
        st.info(
            "No drift check yet. Run `tollgate drift --help` to profile reference traffic and check live traffic."
        )
    else:
        latest = drift.results[-1]
        drifted = [f["feature"] for f in latest["features"] if f.get("drift")]
        verdict = ":red[DRIFT]" if latest.get("drift_detected") else ":green[NO DRIFT]"
        st.markdown(f"## {verdict}")
        st.markdown(
            f"check `{latest['check_id']}` · {when(latest['created_at'])} · drifted: {', '.join(drifted) or 'none'}"
        )
        st.page_link(page("drift"), label="Open drift", icon=":material/compare_arrows:")
    warn_all(drift.warnings[:3])

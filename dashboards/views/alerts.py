"""Alerts: history with states and durations, silences, notification delivery (secrets never shown)."""

from __future__ import annotations

import time

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards.data import alerts as alert_data
from dashboards.panels import remote_alerts
from dashboards.settings import alertmanager_url, prometheus_url
from dashboards.ui import alert_timeline, duration, monitor_store_or_stop, plot, section, style, when

STATUS_COLORS = {"delivered": "#2ca02c", "retrying": "#ff7f0e", "pending": "#1f77b4", "failed": "#d62728"}

st.title("Alerts")
if prometheus_url():
    remote_alerts.render(prometheus_url(), alertmanager_url())
    st.stop()
path = monitor_store_or_stop("Alert states, silences and notifications are kept there.")
now = time.time()


def history() -> None:
    changes = alert_data.state_changes(path)
    if changes.empty:
        st.success("No alert has fired yet.", icon=":material/check_circle:")
        return
    eps = alert_data.mark_silenced(alert_data.episodes(changes, now), path, now)
    counts = eps["state"].value_counts()
    c = st.columns(4)
    for col, state in zip(c, ("firing", "pending", "resolved"), strict=False):
        col.metric(state.capitalize(), int(counts.get(state, 0)))
    c[3].metric("Silenced now", int((eps["silenced"] & (eps["state"] != "resolved")).sum()))
    rules = sorted(eps["rule"].unique())
    states = st.multiselect(
        "State", ["firing", "pending", "resolved"], default=["firing", "pending", "resolved"]
    )
    picked = st.multiselect("Rule", rules, placeholder="all rules")
    shown = eps[eps["state"].isin(states) & (eps["rule"].isin(picked) if picked else True)]
    table = pd.DataFrame(
        {
            "state": shown["state"],
            "rule": shown["rule"],
            "target": shown["target"],
            "severity": shown["severity"],
            "started": shown["started"].map(when),
            "firing since": shown["firing_at"].map(lambda t: "" if pd.isna(t) else when(t)),
            "resolved": shown["resolved_at"].map(lambda t: "still active" if pd.isna(t) else when(t)),
            "duration": shown["duration_s"].map(duration),
            "value": shown["value"],
            "threshold": shown["threshold"],
            "silenced": shown["silenced"],
            "summary": shown["summary"],
        }
    )
    st.dataframe(
        table, hide_index=True, column_config={"silenced": st.column_config.CheckboxColumn("silenced")}
    )
    alert_timeline(shown, shown["started"], shown["resolved_at"].fillna(now), key="alert_timeline")


def silences() -> None:
    sil = alert_data.silences(path)
    if sil.empty:
        st.caption("No silences.")
        return
    sil = sil.assign(
        status=[
            "active" if s <= now < e else ("expired" if e <= now else "scheduled")
            for s, e in zip(sil["starts_at"], sil["ends_at"], strict=False)
        ],
        matchers=sil["matchers"].map(alert_data.matchers_text),
        starts=sil["starts_at"].map(when),
        ends=sil["ends_at"].map(when),
    )
    st.dataframe(sil[["status", "matchers", "starts", "ends", "created_by", "comment"]], hide_index=True)


def notifications() -> None:
    out = alert_data.outbox(path)
    if out.empty:
        st.caption(
            "No notifications sent yet (configure a Slack or webhook receiver for `tollgate monitor`)."
        )
        return
    counts = out["status"].value_counts()
    c = st.columns(4)
    for col, status in zip(c, ("delivered", "retrying", "pending", "failed"), strict=False):
        col.metric(status.capitalize(), int(counts.get(status, 0)))
    attention = out[out["status"].isin(["retrying", "failed"])]
    if not attention.empty:
        st.warning(
            f"{len(attention)} notification(s) not delivered: "
            + "; ".join(
                f"`{r.fingerprint}` ({r.status}, {r.attempts} attempts): `{r.last_error}`"
                for r in attention.head(3).itertuples()
            )
        )
    daily = (
        out.assign(day=pd.to_datetime(out["created_at"], unit="s", utc=True).dt.floor("D"))
        .groupby(["day", "status"])
        .size()
        .reset_index(name="notifications")
    )
    fig = px.bar(
        daily, x="day", y="notifications", color="status", color_discrete_map=STATUS_COLORS, barmode="stack"
    )
    plot(style(fig, "day (UTC)", "notifications (count)", height=260), key="outbox_daily")
    table = out.assign(
        created=out["created_at"].map(when),
        delivered=out["delivered_at"].map(when),
        next_attempt=out["next_attempt_at"].map(when),
    )
    st.dataframe(
        table[
            [
                "status",
                "receiver",
                "fingerprint",
                "state",
                "attempts",
                "created",
                "delivered",
                "next_attempt",
                "last_error",
            ]
        ],
        hide_index=True,
    )


section("History", history)
section("Silences", silences)
section("Notification delivery", notifications)

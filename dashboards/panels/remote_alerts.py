"""The Alerts page on the scale-out path: Prometheus' alerts and ALERTS history, Alertmanager's v2
alerts and silences (`tollgate dashboard --prometheus URL [--alertmanager URL]`)."""

from __future__ import annotations

import time

import streamlit as st

from dashboards.data import prometheus
from dashboards.data.alerts import matchers_text
from dashboards.ui import alert_timeline, duration, section, when

HISTORY_S = 24 * 3600
START_PROMETHEUS = "start Prometheus with the config from `tollgate monitor export-prometheus --out deploy/`"


def render(prom: str, am: str | None) -> None:
    now = time.time()
    st.caption(f"Alerts from Prometheus at {prom}" + (f" and Alertmanager at {am}." if am else "."))

    def active() -> None:
        alerts = prometheus.alertmanager_alerts(am) if am else prometheus.prometheus_alerts(prom)
        if alerts.empty:
            st.success("No alert is pending or firing.", icon=":material/check_circle:")
            return
        counts = alerts["state"].value_counts()
        cols = st.columns(3)
        labels = ("active", "suppressed") if am else ("firing", "pending")
        for col, state in zip(cols, labels, strict=False):
            col.metric(state.capitalize(), int(counts.get(state, 0)))
        shown = alerts.drop(columns=["labels"], errors="ignore").assign(
            since=alerts["since"].map(when), age=(now - alerts["since"]).map(duration)
        )
        st.dataframe(shown, hide_index=True)

    def history() -> None:
        eps = prometheus.alert_history(prom, now - HISTORY_S, now)
        if eps.empty:
            st.success("No alert fired in the last 24 h.", icon=":material/check_circle:")
            return
        alert_timeline(eps, eps["started"], eps["ended"], key="remote_alert_timeline")
        st.dataframe(
            eps.assign(started=eps["started"].map(when), ended=eps["ended"].map(when),
                       duration=(eps["ended"] - eps["started"]).map(duration)),
            hide_index=True,
        )  # fmt: skip

    def silences() -> None:
        if not am:
            st.info(
                "Silences live in Alertmanager: start the dashboard with `--alertmanager http://HOST:9093`.",
                icon=":material/info:",
            )
            return
        sil = prometheus.alertmanager_silences(am)
        if sil.empty:
            st.caption("No silences.")
            return
        sil = sil.assign(
            matchers=sil["matchers"].map(matchers_text),
            starts=sil["starts_at"].map(when),
            ends=sil["ends_at"].map(when),
        )
        st.dataframe(sil[["state", "matchers", "starts", "ends", "created_by", "comment"]], hide_index=True)

    hint = f"Is it running? ({START_PROMETHEUS})"
    section("Active alerts", active, hint)
    section("History (Prometheus ALERTS, last 24 h)", history, hint)
    section("Silences", silences, hint)
    st.subheader("Notification delivery")
    st.caption(
        "Alertmanager delivers notifications on this path; its own metrics "
        "(`alertmanager_notifications_failed_total`) say whether Slack accepted them."
    )

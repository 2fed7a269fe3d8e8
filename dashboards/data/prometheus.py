"""The scale-out path's reader: Prometheus' HTTP API (/api/v1) and Alertmanager's v2 API.

Same frames as dashboards/data/store.py (ts, target, name, labels, value), so the Live and Overview
pages plot either. Each figure's PromQL comes from tollgate.contracts.figures, the definition the
embedded monitor evaluates and `tollgate monitor export-prometheus` records, so both modes show the
same numbers. Queries use the raw expressions rather than the recorded `tollgate:*` series: they then
also cover history that predates the recording rules (e.g. blocks backfilled with promtool).

A target is Prometheus' `instance` label. Ranges are queried with at most `max_points` steps and a rate
window of max(`window_s`, step), so a week's line averages every sample as the store's tiers do.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pandas as pd
import streamlit as st

from dashboards.data.frames import latest_frame, series_frame, targets_frame
from dashboards.data.store import LIVE_TTL_S, StoreError
from tollgate.contracts.durations import format_duration
from tollgate.contracts.figures import promql

TIMEOUT_S = 10.0
HIDDEN_LABELS = ("instance", "job")  # the target, and the scrape job it came from
HISTORY_LOOKBACK_S = 30 * 86400  # the Live page's longest range
QUERY_THREADS = 4


class RemoteError(StoreError):
    """Prometheus or Alertmanager did not answer, or refused a query; the message names the URL."""


def _get(base: str, path: str, params: dict | None = None, what: str = "Prometheus") -> Any:
    url = base.rstrip("/") + path
    try:
        response = httpx.get(url, params=params, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise RemoteError(f"{what} at {base} did not answer ({type(exc).__name__}: {exc})") from exc
    try:
        body = response.json()
    except ValueError:
        raise RemoteError(f"{what} at {base}{path} answered {response.status_code}, not JSON") from None
    if response.status_code >= 400 or (isinstance(body, dict) and body.get("status") == "error"):
        detail = body.get("error") if isinstance(body, dict) else body
        raise RemoteError(f"{what} at {base}{path} answered {response.status_code}: {detail}")
    return body["data"] if isinstance(body, dict) and "data" in body else body


def go_duration(seconds: float) -> str:
    """A query range in whole seconds (at least 1s: Prometheus refuses an empty range)."""
    return format_duration(max(1, math.ceil(seconds)))


def _labels(metric: dict[str, str]) -> str:
    return json.dumps({k: v for k, v in sorted(metric.items()) if k not in HIDDEN_LABELS}, sort_keys=True)


def _epoch(text: str | None) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def targets(base: str) -> pd.DataFrame:
    """target (instance), up, last_scrape, last_error of Prometheus' active scrape targets."""
    data = _get(base, "/api/v1/targets", {"state": "active"})
    rows = {}
    for t in data.get("activeTargets", []):
        instance = t.get("labels", {}).get("instance") or t.get("scrapeUrl", "")
        rows[instance] = (
            instance,
            {"up": 1, "down": 0}.get(t.get("health")),
            _epoch(t.get("lastScrape")),
            t.get("lastError") or None,
        )
    if not rows:  # no scrape config (e.g. a TSDB of backfilled history): the instances it holds
        start = time.time() - HISTORY_LOOKBACK_S
        for instance in _get(base, "/api/v1/label/instance/values", {"start": start}):
            rows[instance] = (instance, None, None, None)
    return targets_frame(sorted(rows.values()))


def data_end(base: str) -> float | None:
    """Prometheus' newest scrape, else now (a range query ending now shows what it has)."""
    last = targets(base)["last_scrape"].dropna()
    return float(last.max()) if not last.empty else time.time()


def step_for(span_s: float, max_points: int | None, min_step_s: float = 1.0) -> float:
    return max(min_step_s, span_s / ((max_points or 11_000) - 1))


@st.cache_data(ttl=30, show_spinner=False, max_entries=64)
def series(
    base: str,
    names: tuple[str, ...],
    target_list: tuple[str, ...],
    start: float,
    end: float,
    max_points: int | None,
    window_s: float = 60.0,
) -> pd.DataFrame:
    """Columns ts, target, name, labels, value: one range query per figure, QUERY_THREADS at a time
    (Prometheus evaluates them in parallel; one after another they add up to the page's wait)."""
    step = step_for(end - start, max_points)
    window = go_duration(max(window_s, step))
    wanted = set(target_list)

    def fetch(name: str) -> list[tuple]:
        params = {"query": promql(name, window), "start": start, "end": end, "step": step}
        out = []
        for r in _get(base, "/api/v1/query_range", params)["result"]:
            target = r["metric"].get("instance", "")
            if target in wanted:
                labels = _labels(r["metric"])
                out.extend((float(t), target, name, labels, float(v)) for t, v in r["values"])
        return out

    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        rows = [row for part in pool.map(fetch, names) for row in part]
    return series_frame(rows)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def latest(
    base: str, names: tuple[str, ...], target_list: tuple[str, ...], window_s: float = 60.0
) -> pd.DataFrame:
    """Newest value of each figure per target and labels (one instant query per figure)."""
    wanted = set(target_list)
    rows = []
    for name in names:
        for r in _get(base, "/api/v1/query", {"query": promql(name, go_duration(window_s))})["result"]:
            target = r["metric"].get("instance", "")
            if target in wanted:
                ts, value = r["value"]
                rows.append((target, name, _labels(r["metric"]), float(value), float(ts)))
    return latest_frame(rows)


def _alert_identity(labels: dict[str, str]) -> dict[str, str]:
    """rule, target and severity of an alert from its labels, as Prometheus and Alertmanager both label it."""
    return {
        "rule": labels.get("alertname", ""),
        "target": labels.get("instance", ""),
        "severity": labels.get("severity", ""),
    }


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def prometheus_alerts(base: str) -> pd.DataFrame:
    """Prometheus' pending and firing alerts: rule, target, severity, state, since, value, summary."""
    rows = []
    for a in _get(base, "/api/v1/alerts")["alerts"]:
        labels, notes = a.get("labels", {}), a.get("annotations", {})
        rows.append(
            {
                **_alert_identity(labels),
                "state": a.get("state", ""),
                "since": _epoch(a.get("activeAt")),
                "value": float(a["value"]) if a.get("value") not in (None, "") else None,
                "summary": notes.get("summary", ""),
                "labels": labels,
            }
        )
    return pd.DataFrame(
        rows, columns=["rule", "target", "severity", "state", "since", "value", "summary", "labels"]
    )


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def alert_history(base: str, start: float, end: float) -> pd.DataFrame:
    """Episodes of Prometheus' ALERTS series over [start, end]: rule, target, state, started, ended."""
    step = step_for(end - start, 2000, min_step_s=5.0)
    query = f"max_over_time(ALERTS[{go_duration(step)}])"  # an episode shorter than a step still shows
    result = _get(base, "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step})
    rows = []
    for r in result["result"]:
        m = r["metric"]
        times = [float(t) for t, _ in r["values"]]
        begin = prev = times[0]
        for t in [*times[1:], math.inf]:
            if t - prev > 1.5 * step:  # a gap: the episode ended at its last sample
                rows.append((m.get("alertname", ""), m.get("instance", ""), m.get("severity", ""),
                             m.get("alertstate", ""), begin, prev))  # fmt: skip
                begin = t
            prev = t
    out = pd.DataFrame(rows, columns=["rule", "target", "severity", "state", "started", "ended"])
    return out.sort_values("started", ascending=False).reset_index(drop=True)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def alertmanager_alerts(base: str) -> pd.DataFrame:
    """Alertmanager's alerts (v2): rule, target, severity, state (active|suppressed), since, silenced_by."""
    rows = []
    for a in _get(base, "/api/v2/alerts", what="Alertmanager"):
        labels, status = a.get("labels", {}), a.get("status", {})
        rows.append(
            {
                **_alert_identity(labels),
                "state": status.get("state", ""),
                "since": _epoch(a.get("startsAt")),
                "silenced_by": ", ".join(status.get("silencedBy") or []),
                "summary": a.get("annotations", {}).get("summary", ""),
                "receivers": ", ".join(r.get("name", "") for r in a.get("receivers", [])),
            }
        )
    columns = ["rule", "target", "severity", "state", "since", "silenced_by", "summary", "receivers"]
    return pd.DataFrame(rows, columns=columns)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def alertmanager_silences(base: str) -> pd.DataFrame:
    """Alertmanager's silences (v2) in the store's shape: matchers (JSON), starts_at, ends_at, ..."""
    rows = [
        {
            "id": s.get("id"),
            "state": s.get("status", {}).get("state", ""),
            "matchers": json.dumps(s.get("matchers", [])),
            "starts_at": _epoch(s.get("startsAt")),
            "ends_at": _epoch(s.get("endsAt")),
            "created_by": s.get("createdBy", ""),
            "comment": s.get("comment", ""),
        }
        for s in _get(base, "/api/v2/silences", what="Alertmanager")
    ]
    columns = ["id", "state", "matchers", "starts_at", "ends_at", "created_by", "comment"]
    return pd.DataFrame(rows, columns=columns)

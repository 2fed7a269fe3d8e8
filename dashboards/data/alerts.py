"""Alert history, silences and notification delivery from the monitor store, secrets removed."""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.data.store import LIVE_TTL_S, table
from dashboards.redact import redact

HISTORY_LIMIT = 20_000  # state changes; months of history for a normal rule set


def _labels(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def state_changes(path: str) -> pd.DataFrame:
    """The newest HISTORY_LIMIT alert state changes, oldest first."""
    sql = f"SELECT * FROM alerts ORDER BY id DESC LIMIT {HISTORY_LIMIT}"
    return table(path, sql).iloc[::-1].reset_index(drop=True)


def episodes(changes: pd.DataFrame, now: float) -> pd.DataFrame:
    """One row per alert episode (pending -> firing -> resolved) with its state and duration."""
    rows: list[dict[str, Any]] = []
    open_by_fp: dict[str, dict[str, Any]] = {}
    for ch in changes.itertuples(index=False):
        ep = open_by_fp.get(ch.fingerprint)
        if ep is None:
            labels = _labels(ch.labels)
            ep = {
                "rule": ch.rule,
                "target": labels.get("target") or labels.get("instance") or "",
                "severity": ch.severity or labels.get("severity") or "",
                "state": ch.state,
                "started": ch.active_since if ch.active_since is not None else ch.ts,
                "firing_at": None,
                "resolved_at": None,
                "fingerprint": ch.fingerprint,
                "labels": labels,
            }
            open_by_fp[ch.fingerprint] = ep
            rows.append(ep)
        ep["state"], ep["value"], ep["threshold"], ep["summary"] = (
            ch.state,
            ch.value,
            ch.threshold,
            ch.summary,
        )
        if ch.state == "firing" and ep["firing_at"] is None:
            ep["firing_at"] = ch.ts
        elif ch.state in ("resolved", "inactive"):
            ep["resolved_at"] = ch.ts
            del open_by_fp[ch.fingerprint]
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for col in ("started", "firing_at", "resolved_at"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    stop = out["resolved_at"].fillna(now)
    out["duration_s"] = stop - out["started"]
    return out.iloc[::-1].reset_index(drop=True)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def silences(path: str) -> pd.DataFrame:
    return table(path, "SELECT * FROM silences ORDER BY ends_at DESC LIMIT 1000")


def _triples(raw: str) -> list[tuple[str, str, str]] | None:
    """Matchers as (name, op, value): Tollgate's [name, op, value] lists or Alertmanager's objects."""
    try:
        matchers = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(matchers, list):
        return None
    out = []
    for m in matchers:
        if isinstance(m, list) and len(m) == 3:
            out.append((str(m[0]), str(m[1]), str(m[2])))
        elif isinstance(m, dict):
            op = "=~" if m.get("isRegex") else "="
            out.append(
                (str(m.get("name")), op if m.get("isEqual", True) else "!" + op[-1], str(m.get("value")))
            )
        else:
            return None
    return out


def matchers_text(raw: str) -> str:
    triples = _triples(raw)
    return redact(raw) if triples is None else ", ".join(f'{n}{op}"{v}"' for n, op, v in triples)


def silenced(labels: dict[str, Any], active: pd.DataFrame) -> bool:
    """Whether an alert's labels match every matcher of one of the active silences."""
    for raw in active["matchers"]:
        triples = _triples(raw)
        if triples and all(_matches(t, labels) for t in triples):
            return True
    return False


def mark_silenced(eps: pd.DataFrame, path: str, now: float) -> pd.DataFrame:
    """Episodes with a `silenced` column: labels matched by a silence active at `now`."""
    sil = silences(path)
    active = sil[(sil["starts_at"] <= now) & (sil["ends_at"] > now)]
    return eps.assign(silenced=[silenced(labels, active) for labels in eps["labels"]])


def _matches(matcher: tuple[str, str, str], labels: dict[str, Any]) -> bool:
    name, op, value = matcher
    have = str(labels.get(name, ""))
    hit = re.fullmatch(value, have) is not None if op.endswith("~") else have == value
    return hit if op in ("=", "=~") else not hit


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def outbox(path: str) -> pd.DataFrame:
    """Notifications without their payloads (which carry webhook URLs); errors redacted."""
    out = table(path, "SELECT * FROM outbox ORDER BY id DESC LIMIT 5000").drop(
        columns=["payload", "dedup_key"]
    )
    for col in ("receiver", "last_error"):
        out[col] = out[col].map(redact)
    return out

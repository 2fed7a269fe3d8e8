"""Derived views of per-request records: latency CDFs, a timeline, errors, and run comparison.

Everything returned is small (a few hundred points per line) whatever the run size, so plots stay
fast on a 100,000-request run. `points=None` keeps every request (the benchmark's baseline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from scipy import stats

from dashboards.data.runs import load_requests
from tollgate.contracts.run_folder import INCOMPLETE_PREFIX

MIN_BIN_S = 5.0  # timeline bins: finer is mostly sampling noise at tens of requests per second
LATENCY_COLUMNS = {
    "ttft_ms": "TTFT",
    "tpot_ms": "TPOT",
    "itl_mean_ms": "ITL (mean per request)",
    "e2e_ms": "E2E",
}


def _quantile_grid(points: int) -> np.ndarray:
    """Fractions for a CDF line: even in the body, denser in the tail where SLOs live."""
    body = np.linspace(0.0, 0.99, int(points * 0.7))
    tail = 1 - np.logspace(-2, -5, points - body.size)
    return np.unique(np.concatenate([body, tail, [1.0]]))


@st.cache_data(show_spinner=False, max_entries=8)
def latency_cdf(path: str, mtime: float, points: int | None) -> pd.DataFrame:
    """Long table (metric, latency_ms, fraction) of each latency column's empirical CDF."""
    df = load_requests(path, mtime)
    parts = []
    for col, label in LATENCY_COLUMNS.items():
        if col not in df.columns:
            continue
        v = np.sort(df[col].to_numpy(dtype=float))
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        if points is None:
            frac = np.arange(1, v.size + 1) / v.size
            vals = v
        else:
            frac = _quantile_grid(points)
            vals = np.quantile(v, frac)
        parts.append(pd.DataFrame({"metric": label, "latency_ms": vals, "fraction": frac}))
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["metric", "latency_ms", "fraction"])
    )


@st.cache_data(show_spinner=False, max_entries=8)
def timeline(path: str, mtime: float, points: int | None) -> pd.DataFrame:
    """Per time bin: completions/s, output tokens/s, errors/s and requests in flight."""
    df = load_requests(path, mtime)
    send = df["send_s"].to_numpy(dtype=float)
    end = df["end_s"].to_numpy(dtype=float)
    valid = np.isfinite(send) & np.isfinite(end)
    send, end, ok = send[valid], end[valid], df["ok"].to_numpy()[valid]
    if send.size == 0:
        return pd.DataFrame()
    t0, t1 = send.min(), end.max()
    span = max(t1 - t0, 1.0)
    n_bins = int(min(span / MIN_BIN_S, points)) if points else int(np.ceil(span))
    edges = np.linspace(t0, t1, max(n_bins, 1) + 1)
    width = edges[1] - edges[0]
    tokens = (
        df["output_tokens"].to_numpy(dtype=float)[valid] if "output_tokens" in df else np.zeros(send.size)
    )
    done, _ = np.histogram(end[ok], edges)
    errs, _ = np.histogram(end[~ok], edges)
    toks, _ = np.histogram(end[ok], edges, weights=np.nan_to_num(tokens[ok]))
    mid = (edges[:-1] + edges[1:]) / 2
    in_flight = np.searchsorted(np.sort(send), mid, "right") - np.searchsorted(np.sort(end), mid, "right")
    return pd.DataFrame(
        {
            "elapsed_s": mid - t0,
            "completed_per_s": done / width,
            "output_tokens_per_s": toks / width,
            "errors_per_s": errs / width,
            "in_flight": in_flight,
        }
    )


@st.cache_data(show_spinner=False, max_entries=8)
def errors_by_reason(path: str, mtime: float) -> pd.DataFrame:
    df = load_requests(path, mtime)
    cut_off = df["error"].astype(str).str.startswith(INCOMPLETE_PREFIX) if "error" in df else False
    failed = df.loc[~df["ok"] & ~cut_off]  # requests cut off by the end of the run are not failures
    if failed.empty:
        return pd.DataFrame(columns=["reason", "requests", "share_pct"])
    reasons = failed.get("error", pd.Series("unknown", index=failed.index)).replace("", "unknown")
    counts = reasons.value_counts().rename_axis("reason").reset_index(name="requests")
    counts["share_pct"] = 100 * counts["requests"] / len(df)
    return counts


def cliffs_delta(u: float, n1: int, n2: int) -> float:
    """Effect size from Mann-Whitney U: P(A > B) - P(A < B), in -1..1."""
    return 2 * u / (n1 * n2) - 1


@st.cache_data(show_spinner=False, max_entries=8)
def compare_runs(
    a: tuple[str, float], b: tuple[str, float], alpha: float = 0.01, min_effect: float = 0.1
) -> pd.DataFrame:
    """Per latency metric: medians, change, two-sided Mann-Whitney p-value (Bonferroni over the
    metrics) and Cliff's delta. Significant = p_adjusted < alpha and |delta| >= min_effect, so a
    huge run does not flag a 0.5% change that nobody would act on."""
    da, db = load_requests(*a), load_requests(*b)
    rows: list[dict[str, Any]] = []
    cols = [c for c in LATENCY_COLUMNS if c in da.columns and c in db.columns]
    for col in cols:
        x = da[col].to_numpy(dtype=float)
        y = db[col].to_numpy(dtype=float)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        row = {
            "metric": LATENCY_COLUMNS[col],
            "A median ms": np.nan,
            "B median ms": np.nan,
            "n A": x.size,
            "n B": y.size,
        }
        if x.size and y.size:
            row["A median ms"], row["B median ms"] = float(np.median(x)), float(np.median(y))
        if x.size >= 8 and y.size >= 8:
            res = stats.mannwhitneyu(y, x, alternative="two-sided", method="asymptotic")
            row["p_value"] = float(res.pvalue)
            row["cliffs_delta"] = cliffs_delta(float(res.statistic), y.size, x.size)
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["change_pct"] = 100 * (out["B median ms"] - out["A median ms"]) / out["A median ms"]
    if "p_value" not in out:
        out["p_value"], out["cliffs_delta"] = np.nan, np.nan
    out["p_adjusted"] = np.minimum(out["p_value"] * len(out), 1.0)
    out["significant"] = (out["p_adjusted"] < alpha) & (out["cliffs_delta"].abs() >= min_effect)
    return out

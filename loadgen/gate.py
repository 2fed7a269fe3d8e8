"""SLO gate: thresholds on a run, and regressions against a baseline run that are real, not noise.

The SLO file format is in loadgen/slo.py. Against a baseline, each latency and throughput check
also compares the two runs' per-request samples (requests.parquet; per-second completions for
throughput). A regression fails only if the point estimate is worse than the tolerance AND it is
statistically significant: the bootstrap confidence interval of the ratio candidate/baseline
excludes 1 (scipy.stats.bootstrap, percentile method), or the one-sided Mann-Whitney U test has
p < 1 - confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from loadgen.slo import PERCENTILES, SCALAR_METRICS, SLO, Check, QualitySLO
from tollgate.contracts.run_folder import RunFolderError, read_requests, read_summary, requests_file

SAMPLE_COLUMNS = {"itl_ms": "itl_mean_ms"}  # per-request column used for a metric's baseline test
MAX_SAMPLES = 5000
N_RESAMPLES = 1000


class InvalidRun(ValueError):
    """The run cannot be judged (missing, failed, interrupted or client-bound)."""


@dataclass
class Run:
    path: Path
    summary: dict[str, Any]
    frame: pd.DataFrame


def load_run(path: str | Path, allow_client_bound: bool = False, strict: bool = True) -> Run:
    """Read a run folder. strict: refuse runs that are not complete or were client-bound."""
    path = Path(path)
    try:
        summary = read_summary(path)
    except RunFolderError as exc:
        raise InvalidRun(str(exc)) from None
    if strict and summary["status"] != "complete":
        raise InvalidRun(
            f"{path}: run status is '{summary['status']}', only complete runs can be gated ({summary.get('notes')})"
        )
    if strict and summary["validity"]["client_bound"] and not allow_client_bound:
        procs = summary["validity"].get("client_bound_processes", [])
        raise InvalidRun(
            f"{path}: the load generator was the bottleneck (client_bound in {procs}); rerun with more --processes"
        )
    records = requests_file(path)
    try:
        frame = read_requests(records) if records else pd.DataFrame()
    except RunFolderError as exc:
        raise InvalidRun(str(exc)) from None
    return Run(path, summary, frame)


def scalar_value(run: Run, check: Check, goodput_slo: dict[str, float]) -> float | None:
    s = run.summary
    if check.metric == "error_rate":
        sent = s["requests"]["completed"] + s["requests"]["failed"]
        return s["requests"]["failed"] / sent if sent else None
    if check.metric in ("goodput", "goodput_fraction"):
        from loadgen.report import good_requests

        if run.frame.empty:
            return 0.0
        good = int(good_requests(run.frame, goodput_slo).sum())
        return good / s["duration_s"] if check.metric == "goodput" else good / len(run.frame)
    if check.metric.startswith("throughput."):
        return s["throughput"].get(check.metric.split(".", 1)[1])
    block = s["metrics"].get(check.metric)
    if block is None:
        raise InvalidRun(f"{run.path}: summary has no metrics.{check.metric} (open-loop metrics need --rate)")
    return block.get(check.percentile)


def samples(run: Run, check: Check) -> np.ndarray:
    """Per-request values (latency) or per-second values (throughput) behind a check."""
    frame = run.frame[run.frame["ok"].astype(bool)] if not run.frame.empty else run.frame
    if check.metric.startswith("throughput."):
        if frame.empty:
            return np.array([])
        t0 = float(run.frame["send_s"].min())
        seconds = np.floor(frame["end_s"].to_numpy() - t0).astype(int)
        weights = frame["output_tokens"].to_numpy() if "token" in check.metric else None
        return np.bincount(seconds, weights=weights).astype(float)
    column = SAMPLE_COLUMNS.get(check.metric, check.metric)
    values = frame[column].dropna().to_numpy(dtype=float) if column in frame else np.array([])
    if len(values) > MAX_SAMPLES:
        values = np.random.default_rng(0).choice(values, MAX_SAMPLES, replace=False)
    return values


def _statistic(percentile: str | None):
    q = PERCENTILES.get(percentile) if percentile else None

    def stat(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) if q is None else np.percentile(x, q, axis=axis)

    return stat


def compare(cand: np.ndarray, base: np.ndarray, check: Check, slo: SLO) -> dict[str, Any]:
    """Regression test of one check: ratio, confidence interval or p-value, decision."""
    higher_is_worse = not check.metric.startswith("throughput.")
    stat = _statistic(check.percentile)
    if len(cand) < 3 or len(base) < 3:
        return {"decision": "skipped", "reason": "fewer than 3 samples in a run"}
    c, b = float(stat(cand)), float(stat(base))
    ratio = c / b if b > 0 else math.inf
    worse = ratio > 1 + slo.tolerance if higher_is_worse else ratio < 1 - slo.tolerance
    out: dict[str, Any] = {"candidate": c, "baseline": b, "ratio": ratio, "method": slo.method}
    if slo.method == "bootstrap":
        res = stats.bootstrap(
            (cand, base),
            lambda x, y, axis=-1: stat(x, axis=axis) / np.maximum(stat(y, axis=axis), 1e-12),
            n_resamples=N_RESAMPLES,
            confidence_level=slo.confidence,
            method="percentile",
            vectorized=True,
            random_state=np.random.default_rng(0),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        out["ci"] = [low, high]
        significant = low > 1 if higher_is_worse else high < 1
    else:
        alternative = "greater" if higher_is_worse else "less"
        p = float(stats.mannwhitneyu(cand, base, alternative=alternative).pvalue)
        out["p_value"] = p
        significant = p < 1 - slo.confidence
    out["significant"] = significant
    out["beyond_tolerance"] = worse
    out["decision"] = "regression" if worse and significant else "ok"
    return out


def evaluate(run: Run, slo: SLO, baseline: Run | None = None) -> list[dict[str, Any]]:
    results = []
    for check in slo.checks:
        value = scalar_value(run, check, slo.goodput)
        passed = (
            value is not None
            and (check.max is None or value <= check.max)
            and (check.min is None or value >= check.min)
        )
        result: dict[str, Any] = {
            "name": check.name,
            "metric": check.metric,
            "percentile": check.percentile,
            "value": value,
            "max": check.max,
            "min": check.min,
            "passed": bool(passed),
            "slo_line": check.line,
        }
        if value is None:
            result["reason"] = "no value (no completed requests)"
        if baseline is not None and check.metric not in SCALAR_METRICS:
            result["baseline"] = compare(samples(run, check), samples(baseline, check), check, slo)
            if result["baseline"]["decision"] == "regression":
                result["passed"] = False
        results.append(result)
    return results


def quality_checks(result: dict[str, Any], q: QualitySLO | None) -> list[dict[str, Any]]:
    """Gate rows of a loadgen.quality result: greedy agreement (>= min) and logprob difference (<= max).

    A threshold without a figure fails (e.g. max_logprob_diff when a server returns no logprobs);
    without a threshold the figure is reported and passes."""
    q = q or QualitySLO()
    detail = f"{result['prompts']} prompts x {result['max_tokens']} tokens"
    rows = []
    for metric, value, low, high in (
        ("quality.greedy_agreement", result["greedy_agreement"], q.min_agreement, None),
        ("quality.mean_logprob_diff", result["mean_logprob_diff"], None, q.max_logprob_diff),
    ):
        judged = low is not None or high is not None
        ok = value is not None and (low is None or value >= low) and (high is None or value <= high)
        row: dict[str, Any] = {
            "name": metric,
            "metric": metric,
            "percentile": None,
            "value": value,
            "max": high,
            "min": low,
            "passed": bool(ok or not judged),
            "slo_line": q.line,
            "detail": detail,
        }
        if value is None:
            row["reason"] = "a server returned no logprobs"
        rows.append(row)
    return rows

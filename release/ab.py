"""A/B load test: one seeded workload sent to two servers at the same time, compared per metric.

`concurrent` (the default) runs the two sides' load generators side by side, so request i of the
seeded workload goes to A and to B at the same offset of the same arrival schedule (same prompts,
same lengths, same intended send times; the two generators start within about a second of each
other): whatever the machine or the network does during the run, it does to both. `sequential`
runs A and then B, which is what two separate `tollgate load` runs do; it exists to show the
difference and for servers that cannot be loaded at the same time (say, one GPU).

Per metric (TTFT, ITL, TPOT, E2E per completed request; output-token throughput per time bucket;
error rate) B is compared with A by release.stats, with Holm-Bonferroni (or BH) correction across
the metrics. Latencies of a concurrent open-loop run are compared pair by pair (Wilcoxon
signed-rank on request i of A vs request i of B); otherwise as two samples (Mann-Whitney U). The verdict:

    a-better / b-better  at least one metric differs, and all that differ favour that side
    inconclusive         metrics differ both ways (a trade-off), too few samples, or a side's run
                         did not complete or was client-bound
    no-difference        nothing differs and every metric had enough samples
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from release.stats import compare_counts, compare_paired, compare_samples, correct
from tollgate.contracts.run_folder import INCOMPLETE_PREFIX, LATENCY_METRICS, REQUEST_COLUMNS

# summary metric name -> its requests.parquet column (ITL per request is the request's mean gap)
LATENCY = dict(zip(LATENCY_METRICS, ("ttft_ms", "itl_mean_ms", "tpot_ms", "e2e_ms"), strict=True))
assert set(LATENCY.values()) <= set(REQUEST_COLUMNS), "A/B latencies must be requests.parquet columns"
MIN_BUCKET_S = 1.0
TARGET_BUCKETS = 30


def throughput_samples(frame: pd.DataFrame) -> np.ndarray:
    """Output tokens/s per time bucket over the side's measured window (first send to last end)."""
    ok = frame[frame["ok"].astype(bool)]
    if ok.empty:
        return np.array([])
    start, end = float(frame["send_s"].min()), float(ok["end_s"].max())
    width = max(MIN_BUCKET_S, (end - start) / TARGET_BUCKETS)
    edges = start + width * np.arange(max(1, math.ceil((end - start) / width)) + 1)
    tokens, _ = np.histogram(ok["end_s"], bins=edges, weights=ok["output_tokens"].clip(lower=0))
    return tokens / width


def request_index(frame: pd.DataFrame) -> pd.Index:
    """The workload's request index i (request_id is "<run-id>-<i>"), which both sides share."""
    return pd.Index(frame["request_id"].astype(str).str.rsplit("-", n=1).str[-1].astype(int), name="i")


def error_counts(frame: pd.DataFrame) -> tuple[int, int]:
    """(failed, finished): requests the end of the run cut off count as neither."""
    cut = frame["error"].astype(str).str.startswith(INCOMPLETE_PREFIX)
    finished = frame[~cut]
    return int((~finished["ok"].astype(bool)).sum()), int(len(finished))


def compare_runs(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    correction: str = "holm",
    min_samples: int = 10,
    paired: bool = False,
) -> dict[str, dict[str, Any]]:
    """Per-metric comparison of B with A. `paired`: request i of both sides was sent at the same
    moment (concurrent open loop), so latencies are compared pair by pair."""
    results: dict[str, dict[str, Any]] = {}
    ok_a, ok_b = frame_a[frame_a["ok"].astype(bool)], frame_b[frame_b["ok"].astype(bool)]
    if paired:
        pairs = ok_a.set_index(request_index(ok_a)).join(
            ok_b.set_index(request_index(ok_b)), lsuffix="_a", rsuffix="_b", how="inner"
        )
    for name, column in LATENCY.items():
        if paired:
            results[name] = compare_paired(
                pairs[f"{column}_a"], pairs[f"{column}_b"], min_effect=min_effect, min_samples=min_samples
            )
        else:
            results[name] = compare_samples(
                ok_a[column], ok_b[column], min_effect=min_effect, min_samples=min_samples
            )
    results["output_tokens_per_s"] = compare_samples(
        throughput_samples(frame_a),
        throughput_samples(frame_b),
        higher_is_better=True,
        min_effect=min_effect,
        min_samples=min(min_samples, 5),
    )
    results["error_rate"] = compare_counts(*error_counts(frame_a), *error_counts(frame_b))
    correct(results, alpha, "fdr_bh" if correction == "bh" else "holm")
    return results


def verdict(
    metrics: dict[str, dict[str, Any]], summaries: dict[str, dict[str, Any]]
) -> tuple[str, list[str]]:
    """(verdict, reasons) from the per-metric results and the two sides' summaries."""
    reasons = []
    for side, summary in summaries.items():
        if summary.get("status") != "complete":
            reasons.append(
                f"side {side}'s run is '{summary.get('status')}' ({'; '.join(summary.get('notes', []))})"
            )
        elif summary.get("validity", {}).get("client_bound"):
            reasons.append(f"side {side}'s load generator was the bottleneck (client_bound)")
    if reasons:
        return "inconclusive", reasons
    favour = {name: r["better"] for name, r in metrics.items() if r.get("better")}
    sides = set(favour.values())
    if sides == {"a", "b"}:
        trade = ", ".join(f"{n} favours {s.upper()}" for n, s in favour.items())
        return "inconclusive", [f"metrics differ both ways: {trade}"]
    if sides:
        (side,) = sides
        return f"{side}-better", [f"{', '.join(favour)} differ in favour of {side.upper()}"]
    short = [n for n, r in metrics.items() if not r.get("enough_data")]
    if short:
        return "inconclusive", [f"too few samples for {', '.join(short)}"]
    return "no-difference", ["no metric differs significantly by at least the minimum effect"]

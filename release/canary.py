"""Kayenta-style canary judge: per-interval samples of each metric, baseline vs canary, one score.

For every metric the judge takes the per-interval values of the window (one per scrape from the
monitor store, one per step from Prometheus) for the baseline and for the canary, and classifies
the canary as Kayenta's judge does: High or Low when the two-sided Mann-Whitney U test is
significant at the confidence level AND the effect is large (|Cliff's delta| >= 0.147 and a
Hodges-Lehmann shift of at least --min-effect of the baseline's median), else Pass; NoData when a
side has fewer than --min-samples values. A High on a metric whose increase is bad (latency,
errors, drift) or a Low on one whose decrease is bad (throughput) fails the metric.

    score = 100 x passed metrics / metrics with data
    verdict = fail if a critical metric failed (error or rejected rate), else pass if score >= --pass-score (95),
              marginal if score >= --marginal-score (75), else fail; nodata if no metric had data
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from release.stats import compare_samples, correct
from tollgate.contracts.monitor_store import SERIES_NAMES
from tollgate.contracts.release import CANARY_EXIT, RELEASE_SCHEMA_VERSION


@dataclass(frozen=True)
class Metric:
    name: str  # a store series name (tollgate.contracts.monitor_store.SERIES_NAMES), also its figure
    bad: str  # "increase" | "decrease" | "either"
    critical: bool = False


METRICS = (
    Metric("ttft_p50_s", "increase"),
    Metric("ttft_p95_s", "increase"),
    Metric("itl_p50_s", "increase"),
    Metric("itl_p95_s", "increase"),
    Metric("e2e_p50_s", "increase"),
    Metric("e2e_p95_s", "increase"),
    Metric("error_rate", "increase", critical=True),
    Metric("rejected_rate", "increase", critical=True),
    Metric("request_rate", "decrease"),
    Metric("generation_tokens_per_s", "decrease"),
    Metric("drift_score", "increase"),
)

assert {m.name for m in METRICS} <= set(SERIES_NAMES), "canary metrics must be monitor store series"


@dataclass(frozen=True)
class Judgement:
    confidence: float = 0.95
    min_effect: float = 0.10
    min_samples: int = 5
    correction: str = "none"  # Kayenta judges each metric alone; "holm" or "bh" to correct across them
    pass_score: float = 95.0
    marginal_score: float = 75.0


class Source(Protocol):
    def check_target(self, target: str) -> str: ...
    def samples(self, target: str, name: str, start: float, end: float, min_samples: int) -> list[float]: ...


def classify(result: dict[str, Any], metric: Metric) -> str:
    if not result.get("enough_data"):
        return "NoData"
    if not result.get("significant"):
        return "Pass"
    return "High" if result["relative_shift"] > 0 else "Low"


def failed(classification: str, metric: Metric) -> bool:
    return (classification == "High" and metric.bad in ("increase", "either")) or (
        classification == "Low" and metric.bad in ("decrease", "either")
    )


def compare_window(
    source: Source, baseline: str, canary: str, start: float, end: float, judgement: Judgement
) -> dict[str, dict[str, Any]]:
    """Per metric: the canary's samples against the baseline's over [start, end], corrected across metrics."""
    results: dict[str, dict[str, Any]] = {}
    for m in METRICS:
        base = source.samples(baseline, m.name, start, end, judgement.min_samples)
        cand = source.samples(canary, m.name, start, end, judgement.min_samples)
        results[m.name] = compare_samples(
            base, cand, min_effect=judgement.min_effect, min_samples=judgement.min_samples
        )
    method = {"bh": "fdr_bh"}.get(judgement.correction, judgement.correction)
    correct(results, 1.0 - judgement.confidence, method)
    return results


def classified(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """canary.json's `metrics`: each comparison with its Kayenta class and whether the metric passed."""
    metrics = {}
    for m in METRICS:
        r = results[m.name]
        cls = classify(r, m)
        metrics[m.name] = {
            "classification": cls,
            "passed": cls != "NoData" and not failed(cls, m),
            "bad_direction": m.bad,
            "critical": m.critical,
            **{k: v for k, v in r.items() if k not in ("better", "higher_is_better")},
        }
    return metrics


def decide(metrics: dict[str, dict[str, Any]], judgement: Judgement) -> tuple[float, str, str]:
    """(score, verdict, reason): a failed critical metric fails the canary whatever the score."""
    with_data = [n for n, r in metrics.items() if r["classification"] != "NoData"]
    score = 100.0 * sum(metrics[n]["passed"] for n in with_data) / len(with_data) if with_data else 0.0
    critical_failed = [n for n in with_data if metrics[n]["critical"] and not metrics[n]["passed"]]
    if not with_data:
        return score, "nodata", "no metric had enough samples on both sides in the window"
    if critical_failed:
        return score, "fail", f"critical metric failed: {', '.join(critical_failed)}"
    if score >= judgement.pass_score:
        return score, "pass", f"score {score:.0f} >= {judgement.pass_score:g}"
    if score >= judgement.marginal_score:
        return (
            score,
            "marginal",
            f"score {score:.0f} between {judgement.marginal_score:g} and {judgement.pass_score:g}",
        )
    return score, "fail", f"score {score:.0f} < {judgement.marginal_score:g}"


def judge(
    source: Source,
    baseline: str,
    canary: str,
    window_s: float,
    judgement: Judgement = Judgement(),
    end: float | None = None,
) -> dict[str, Any]:
    """The canary.json verdict (tollgate.contracts.release.CANARY_FIELDS) for the window ending at `end`."""
    end = time.time() if end is None else end
    start = end - window_s
    baseline, canary = source.check_target(baseline), source.check_target(canary)
    metrics = classified(compare_window(source, baseline, canary, start, end, judgement))
    score, verdict, reason = decide(metrics, judgement)
    failing = [n for n, r in metrics.items() if r["classification"] != "NoData" and not r["passed"]]
    return {
        "schema_version": RELEASE_SCHEMA_VERSION,
        "baseline": baseline,
        "canary": canary,
        "window": {"start": start, "end": end, "seconds": window_s},
        "metrics": metrics,
        "score": score,
        "thresholds": {"pass": judgement.pass_score, "marginal": judgement.marginal_score},
        "judgement": {
            "confidence": judgement.confidence,
            "min_effect": judgement.min_effect,
            "min_samples": judgement.min_samples,
            "correction": judgement.correction,
        },
        "verdict": verdict,
        "pass": verdict == "pass",
        "reason": reason,
        "failing_metrics": failing,
        "exit_code": CANARY_EXIT[verdict],
        "created_at": time.time(),
    }

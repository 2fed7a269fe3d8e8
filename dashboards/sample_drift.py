"""Drift check results (tollgate.contracts.drift_result) for the sample data: hourly checks in
which prompt lengths drift upward over the last few hours, with the histograms the dashboard plots.
Written by `tollgate drift check`'s own writer (drift.report.write_result)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from drift.report import write_result
from tollgate.contracts.drift_result import DRIFT_SCHEMA_VERSION


def _hist(values: np.ndarray, edges: np.ndarray) -> dict[str, list]:
    counts, _ = np.histogram(values, edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def write_drift(root: Path, n_checks: int, end: float, seed: int = 7) -> list[Path]:
    """Hourly drift checks; prompt lengths drift upward in the last few hours."""
    rng = np.random.default_rng(seed)
    ref_prompt = rng.lognormal(5.0, 0.7, 5000)
    ref_temp = rng.choice([0.0, 0.7, 1.0], 5000, p=[0.3, 0.5, 0.2])
    endpoints = ["/v1/chat/completions", "/v1/completions"]
    paths = []
    (root / "drift").mkdir(parents=True, exist_ok=True)
    for i in range(n_checks):
        created = end - (n_checks - 1 - i) * 3600
        shift = 0.0 if i < n_checks - 4 else 0.35 * (i - n_checks + 5)
        live_prompt = rng.lognormal(5.0 + shift, 0.7, 800)
        edges = np.quantile(ref_prompt, np.linspace(0, 1, 21))
        edges[-1] = max(edges[-1], live_prompt.max())
        effect = float(abs(np.median(np.log(live_prompt)) - np.median(np.log(ref_prompt))) / 0.7)
        p = float(np.exp(-40 * effect)) if effect > 0.05 else float(rng.uniform(0.2, 0.9))
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created))
        features = [
            _feature("prompt_tokens", "numeric", "ks", effect, p, 0.1, 800)
            | {"reference_hist": _hist(ref_prompt, edges), "live_hist": _hist(live_prompt, edges)},
            _feature("temperature", "numeric", "ks", 0.02, float(rng.uniform(0.3, 0.9)), 0.1, 800)
            | {
                "reference_hist": _hist(ref_temp, np.array([0, 0.35, 0.85, 1.2])),
                "live_hist": _hist(
                    rng.choice([0.0, 0.7, 1.0], 800, p=[0.3, 0.5, 0.2]), np.array([0, 0.35, 0.85, 1.2])
                ),
            },
            _feature("endpoint", "categorical", "chi2", 0.03, float(rng.uniform(0.2, 0.9)), 0.1, 800)
            | {
                "reference_hist": {"categories": endpoints, "counts": [4100, 900]},
                "live_hist": {"categories": endpoints, "counts": [650, 150]},
            },
            _feature("missing_max_tokens", "rate", "two_proportion_z", 0.01, 0.6, 0.05, 800),
            _feature("prompt_sketch", "sketch", "mmd", effect * 0.8, p, 0.1, 800),
            _feature("n_messages", "numeric", "ks", None, None, 0.1, 3)
            | {"drift": None, "status": "undecided", "reason": "fewer than 30 live samples"},
        ]
        result = {
            "schema_version": DRIFT_SCHEMA_VERSION,
            "check_id": stamp,
            "created_at": created,
            "profile": {
                "path": "reports/profiles/reference.json",
                "n_reference": 5000,
                "created_at": end - 30 * 86400,
            },
            "window": {
                "start": created - 3600,
                "end": created,
                "n_live": 800,
                "n_skipped_lines": int(i == 3),
            },
            "settings": {"alpha": 0.05, "correction": "bh", "sequential": False},
            "features": features,
            "multivariate": {
                "method": "classifier_auc",
                "statistic": 0.5 + effect * 0.2,
                "p_value": p,
                "effect_size": effect * 0.4,
                "drift": effect > 0.1,
                "n_live": 800,
                "n_reference": 5000,
            },
            "drift_detected": any(f["drift"] for f in features),
            "evidently_report": None,
            "warnings": ["1 capture line could not be parsed"] if i == 3 else [],
        }
        if i == n_checks - 1:
            html = root / "drift" / f"{stamp}.html"
            html.write_text("<html><body><h1>Evidently data drift report (sample)</h1></body></html>")
            result["evidently_report"] = str(html)
        paths.append(write_result(result, root / "drift"))
    return paths


def _feature(name: str, kind: str, method: str, effect, p, threshold: float, n_live: int) -> dict[str, Any]:
    decided = p is not None
    drift = bool(decided and p < 0.05 and effect >= threshold)
    return {
        "feature": name,
        "kind": kind,
        "method": method,
        "statistic": effect,
        "p_value": p,
        "p_adjusted": min(1.0, p * 3) if decided else None,
        "effect_size": effect,
        "effect_threshold": threshold,
        "drift": drift,
        "status": "decided",
        "reason": None,
        "n_live": n_live,
        "n_reference": 5000,
    }

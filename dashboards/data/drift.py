"""Drift check results (tollgate.contracts.drift_result): reports/drift/<timestamp>.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.data.runs import read_valid
from tollgate.contracts.drift_result import DRIFT_SCHEMA_VERSION, FEATURE_FIELDS

MAX_CHECKS = 2000  # newest checks read; a check every 5 minutes for a week


@dataclass
class DriftIndex:
    results: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    warnings: list[str] = field(default_factory=list)


def drift_signature(root: Path) -> tuple:
    folder = root / "drift"
    if not folder.is_dir():
        return ()
    files = sorted(folder.glob("*.json"))[-MAX_CHECKS:]
    return tuple((f.name, f.stat().st_mtime) for f in files)


def _problems(result: Any) -> list[str]:
    if not isinstance(result, dict):
        return [f"expected a JSON object, got {type(result).__name__}"]
    if not isinstance(result.get("features"), list):
        return ["'features' must be a list"]
    if not isinstance(result.get("created_at"), (int, float)):
        return ["'created_at' must be unix seconds"]
    bad = [i for i, f in enumerate(result["features"]) if not isinstance(f, dict) or "feature" not in f]
    if bad:
        return [f"features[{bad[0]}] has no 'feature' name"]
    version = result.get("schema_version")
    if isinstance(version, int) and version > DRIFT_SCHEMA_VERSION:
        return [f"schema_version {version} is newer than this dashboard reads ({DRIFT_SCHEMA_VERSION})"]
    return []


@st.cache_data(show_spinner=False, max_entries=4)
def load_drift(root: str, signature: tuple) -> DriftIndex:
    index = DriftIndex()
    for name, _mtime in signature:
        path = Path(root) / "drift" / name
        result = read_valid(path, _problems, index.warnings, "check skipped")
        if result is None:
            continue
        result.setdefault("check_id", path.stem)
        index.results.append(result)
    index.results.sort(key=lambda r: r["created_at"])
    return index


def decision(feature: dict[str, Any]) -> str:
    if feature.get("drift") is None or feature.get("status") == "undecided":
        return f"undecided: {feature.get('reason') or 'no reason given'}"
    return "drift" if feature["drift"] else "no drift"


def feature_table(result: dict[str, Any]) -> pd.DataFrame:
    cols = [c for c in FEATURE_FIELDS if c not in ("drift", "status", "reason")]
    rows = [{c: f.get(c) for c in cols} | {"decision": decision(f)} for f in result["features"]]
    return pd.DataFrame(rows, columns=["feature", "decision", *cols[1:]])


@st.cache_data(show_spinner=False, max_entries=4)
def scores_over_time(root: str, signature: tuple) -> pd.DataFrame:
    """Long table: one row per check and feature with effect size and decision."""
    rows = []
    for r in load_drift(root, signature).results:
        for f in r["features"]:
            rows.append(
                {
                    "ts": float(r["created_at"]),
                    "check_id": r["check_id"],
                    "feature": f["feature"],
                    "effect_size": f.get("effect_size"),
                    "p_adjusted": f.get("p_adjusted"),
                    "decision": decision(f),
                }
            )
    return pd.DataFrame(rows, columns=["ts", "check_id", "feature", "effect_size", "p_adjusted", "decision"])


def histogram_frame(result: dict[str, Any], feature: str) -> tuple[pd.DataFrame, str] | None:
    """Reference and live distributions of one feature as shares (%), with the x-axis kind."""
    f = next((x for x in result["features"] if x["feature"] == feature), None)
    if not f or not isinstance(f.get("reference_hist"), dict) or not isinstance(f.get("live_hist"), dict):
        return None
    parts = []
    kind = "categorical"
    for label, h in (("reference", f["reference_hist"]), ("live", f["live_hist"])):
        counts = pd.Series(h.get("counts") or [], dtype=float)
        total = counts.sum() or 1.0
        if "edges" in h:
            kind = "numeric"
            edges = list(h["edges"])
            if len(edges) != len(counts) + 1:
                return None
            x = [f"{edges[i]:.4g}–{edges[i + 1]:.4g}" for i in range(len(counts))]
        else:
            x = [str(c) for c in h.get("categories") or []]
            if len(x) != len(counts):
                return None
        parts.append(
            pd.DataFrame(
                {"bin": x, "share_pct": 100 * counts / total, "distribution": label, "order": range(len(x))}
            )
        )
    return pd.concat(parts, ignore_index=True), kind

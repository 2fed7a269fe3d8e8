"""Read-only access to run folders and sweeps (tollgate.contracts.run_folder).

Every reader is tolerant: a corrupt or partial file becomes a warning naming the file and what
is wrong, and the other runs still load. Results are cached with st.cache_data keyed by the
files' modification times, so a page re-run costs a directory listing, not a re-parse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from tollgate.contracts.run_folder import (
    REQUEST_COLUMNS,
    RUN_SCHEMA_VERSION,
    RunFolderError,
    read_json_file,
    read_requests,
    read_summary,
)

RunDataError = RunFolderError  # a run file that exists but cannot be used; the message says which and why
read_json = read_json_file  # decoded JSON, or RunDataError saying where it is broken


@dataclass
class RunIndex:
    table: pd.DataFrame  # one row per run, newest first
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def read_valid(
    path: Path, check: Callable[[Any], list[str]], warnings: list[str], skipped: str
) -> Any | None:
    """Decoded JSON that passes `check` (a list of problems), else None with a warning saying why."""
    try:
        data = read_json(path)
    except RunDataError as exc:
        warnings.append(f"{exc}; {skipped}")
        return None
    problems = check(data)
    if problems:
        warnings.append(f"{path}: {'; '.join(problems[:4])}; {skipped}")
        return None
    return data


def runs_signature(root: Path) -> tuple:
    """What changes when a run or gate verdict is written: names and mtimes only (cheap)."""
    folder = root / "runs"
    if not folder.is_dir():
        return ()
    return tuple(
        (d.name, _mtime(d / "summary.json"), _mtime(d / "gate.json"))
        for d in sorted(folder.iterdir())
        if d.is_dir()
    )


def _row(run_id: str, summary: dict[str, Any], gate: dict[str, Any] | None) -> dict[str, Any]:
    cfg = summary.get("config") or {}
    metrics = summary.get("metrics") or {}
    return {
        "run_id": run_id,
        "scenario": str(cfg.get("scenario") or cfg.get("workload") or "unknown"),
        "started": pd.to_datetime(summary.get("started_at"), unit="s", utc=True),
        "status": summary.get("status"),
        "duration_s": summary.get("duration_s"),
        "completed": summary["requests"].get("completed"),
        "failed": summary["requests"].get("failed"),
        "requests_per_s": summary["throughput"].get("requests_per_s"),
        "ttft_p95_ms": (metrics.get("ttft_ms") or {}).get("p95"),
        "e2e_p95_ms": (metrics.get("e2e_ms") or {}).get("p95"),
        "verdict": (gate or {}).get("verdict", "not gated"),
        "client_bound": bool((summary.get("validity") or {}).get("client_bound")),
    }


def _gate_problems(gate: Any) -> list[str]:
    if not isinstance(gate, dict) or "verdict" not in gate:
        return ["expected a JSON object with a 'verdict'"]
    return []


@st.cache_data(show_spinner=False, max_entries=8)
def load_runs(root: str, signature: tuple) -> RunIndex:
    """Summaries and gate verdicts of every run under root/runs (signature only keys the cache)."""
    rows, index = [], RunIndex(pd.DataFrame())
    for run_id, summary_mtime, gate_mtime in signature:
        folder = Path(root) / "runs" / run_id
        if summary_mtime < 0:
            rows.append({"run_id": run_id, "status": "partial (no summary.json)", "verdict": "not gated"})
            continue
        try:
            summary = read_summary(folder)
        except RunFolderError as exc:
            index.warnings.append(f"{exc}; run skipped")
            continue
        gate = None
        if gate_mtime >= 0:
            gate = read_valid(folder / "gate.json", _gate_problems, index.warnings, "gate verdict not shown")
            gate = gate or {"verdict": "unreadable"}
            index.gates[run_id] = gate
        index.summaries[run_id] = summary
        rows.append(_row(run_id, summary, gate))
    if rows:
        table = pd.DataFrame(rows)
        table["started"] = pd.to_datetime(table.get("started"), utc=True)
        index.table = table.sort_values("started", ascending=False, na_position="last").reset_index(drop=True)
    return index


@st.cache_data(show_spinner=False, max_entries=4)
def load_requests(path: str, mtime: float) -> pd.DataFrame:
    """Per-request records, the contract's columns only (producers may add bulky per-chunk lists);
    RunDataError when unreadable."""
    return read_requests(path, REQUEST_COLUMNS)


def sweeps_signature(root: Path) -> tuple:
    folder = root / "sweeps"
    if not folder.is_dir():
        return ()
    return tuple((d.name, _mtime(d / "sweep.json")) for d in sorted(folder.iterdir()) if d.is_dir())


@st.cache_data(show_spinner=False, max_entries=8)
def load_sweeps(root: str, signature: tuple) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """sweep_id -> decoded sweep.json, newest first, and warnings for the unusable ones."""
    sweeps, warnings = {}, []
    for sweep_id, mtime in signature:
        path = Path(root) / "sweeps" / sweep_id / "sweep.json"
        if mtime < 0:
            warnings.append(f"{path.parent}: no sweep.json yet (sweep still running or interrupted)")
            continue
        try:
            sweep = read_json(path)
        except RunDataError as exc:
            warnings.append(str(exc))
            continue
        if not isinstance(sweep, dict) or not isinstance(sweep.get("points"), list) or not sweep["points"]:
            warnings.append(f"{path}: 'points' must be a non-empty list of step results")
            continue
        if isinstance(sweep.get("schema_version"), int) and sweep["schema_version"] > RUN_SCHEMA_VERSION:
            warnings.append(
                f"{path}: schema_version {sweep['schema_version']} is newer than this dashboard reads"
            )
        sweeps[sweep_id] = sweep
    ordered = sorted(sweeps.items(), key=lambda kv: kv[1].get("created_at") or 0, reverse=True)
    return dict(ordered), warnings

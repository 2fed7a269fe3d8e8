"""What `tollgate demo` prints at the end: steps, load phases, alerts, drift, where to look.

Reads only contract files (run folder summary.json, the monitor store, drift results) and the
local Slack receiver's log, so it works with whatever the components wrote.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from tollgate.contracts.run_folder import RunFolderError, read_summary

STYLE = {
    "ok": "green",
    "pass": "green",
    "fail": "red",
    "error": "red",
    "skipped": "yellow",
    "drift": "yellow",
}


@dataclass
class Step:
    name: str
    status: str  # ok | pass | fail | invalid | drift | error | skipped
    detail: str = ""
    seconds: float = 0.0


@dataclass
class DemoResult:
    folder: Path
    steps: list[Step] = field(default_factory=list)
    phases: list[tuple[str, Path | None]] = field(default_factory=list)  # (phase, run folder)
    drift_reports: list[tuple[str, Path | None]] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    slack_messages: list[str] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str = "", seconds: float = 0.0) -> Step:
        step = Step(name, status, detail, seconds)
        self.steps.append(step)
        return step


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _ms(block: Any, key: str) -> str:
    value = block.get(key) if isinstance(block, dict) else None
    return f"{value:.0f}" if isinstance(value, (int, float)) else "-"


def phase_row(phase: str, run: Path | None) -> list[str]:
    try:
        summary = read_summary(run, validate=False) if run else None
    except RunFolderError:
        summary = None
    if summary is None:
        return [phase, "no summary", "-", "-", "-", "-", "-", "-"]
    req = summary.get("requests", {})
    metrics = summary.get("metrics", {})
    errors = summary.get("errors") or {}
    rejected = sum(v for k, v in errors.items() if "429" in str(k) and isinstance(v, (int, float)))
    rps = summary.get("throughput", {}).get("requests_per_s")
    return [
        phase,
        str(summary.get("status", "?")),
        str(req.get("completed", "-")),
        f"{req.get('failed', '-')} ({rejected:.0f} x 429)",
        f"{rps:.2f}" if isinstance(rps, (int, float)) else "-",
        _ms(metrics.get("ttft_ms"), "p50"),
        _ms(metrics.get("ttft_ms"), "p95"),
        _ms(metrics.get("e2e_ms"), "p95"),
    ]


def store_alerts(db: Path, since: float) -> list[dict[str, Any]]:
    """Alert state changes in the monitor store since `since` (read-only, tolerant of a missing db)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT ts, rule, state, severity, value, threshold FROM alerts WHERE ts >= ? ORDER BY ts",
                (since,),
            ).fetchall()
    except sqlite3.Error:
        return []
    return [dict(r) for r in rows]


def receiver_messages(log: Path) -> list[str]:
    """One line per message the local Slack receiver printed: its headline and first detail line."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    messages = []
    for i, line in enumerate(lines):
        if line.startswith("--- message"):
            body = [
                x.strip().strip("*") for x in lines[i + 1 : i + 3] if x.strip() and not x.startswith("---")
            ]
            messages.append(" | ".join(body))
    return messages


def alert_table(alerts: list[dict[str, Any]], started_at: float) -> Table:
    """One row per rule: when it went pending, fired and resolved (seconds into the demo), peak value."""
    rules: dict[str, dict[str, Any]] = {}
    for a in alerts:
        row = rules.setdefault(str(a.get("rule")), {"severity": a.get("severity"), "peak": None})
        state = str(a.get("state"))
        row.setdefault(state, float(a["ts"]) - started_at)
        value = a.get("value")
        if isinstance(value, (int, float)) and (row["peak"] is None or value > row["peak"]):
            row["peak"] = value
        row["threshold"] = a.get("threshold")
    table = Table(title="Alerts (monitor store; seconds since the demo started)", title_justify="left")
    for col in ("rule", "severity", "pending", "firing", "resolved", "peak value", "threshold"):
        table.add_column(col)
    for name, row in rules.items():
        table.add_row(
            name,
            str(row["severity"] or "-"),
            *(f"{row[s]:.0f}" if s in row else "-" for s in ("pending", "firing", "resolved")),
            f"{row['peak']:.3g}" if row["peak"] is not None else "-",
            f"{row['threshold']:.3g}" if isinstance(row.get("threshold"), (int, float)) else "-",
        )
    if not rules:
        table.add_row("(none recorded)", "", "", "", "", "", "")
    return table


def drift_row(label: str, path: Path | None) -> list[str]:
    result = read_json(path) if path else None
    if result is None:
        return [label, "no result", "-", "-"]
    features = [
        *result.get("features", []),
        *([result["multivariate"]] if result.get("multivariate") else []),
    ]
    drifted = [f["feature"] for f in features if f.get("drift") is True]
    decided = [f for f in features if f.get("status") == "decided"]
    n_live = (result.get("window") or {}).get("n_live", "-")
    if result.get("drift_detected"):
        verdict = "DRIFT"
    elif decided:
        verdict = "no drift"
    else:
        verdict = "undecided"
    detail = ", ".join(drifted[:6]) + (" ..." if len(drifted) > 6 else "")
    if not decided and features:
        reasons = [str(f.get("reason")) for f in features if "need" in str(f.get("reason"))] or ["?"]
        detail = f"nothing decidable: {reasons[0]}"
    return [label, verdict, str(n_live), detail or "-"]


def print_report(result: DemoResult, console: Console) -> None:
    steps = Table(title="Tollgate demo: steps", title_justify="left")
    for col in ("step", "result", "detail", "seconds"):
        steps.add_column(col, justify="right" if col == "seconds" else "left")
    for s in result.steps:
        style = STYLE.get(s.status, "")
        steps.add_row(s.name, f"[{style}]{s.status}[/]" if style else s.status, s.detail, f"{s.seconds:.1f}")
    console.print(steps)

    if result.phases:
        load = Table(title="Load phases (run folders)", title_justify="left")
        for col in (
            "phase",
            "status",
            "completed",
            "failed",
            "req/s",
            "TTFT p50 ms",
            "TTFT p95 ms",
            "E2E p95 ms",
        ):
            load.add_column(col)
        for phase, run in result.phases:
            load.add_row(*phase_row(phase, run))
        console.print(load)

    if result.drift_reports:
        drift = Table(title="Drift checks against the training profile", title_justify="left")
        for col in ("live window", "verdict", "requests", "drifted features"):
            drift.add_column(col)
        for label, path in result.drift_reports:
            drift.add_row(*drift_row(label, path))
        console.print(drift)

    console.print(alert_table(result.alerts, result.started_at))
    if result.slack_messages:
        shown = "\n".join(result.slack_messages[-12:])
        title = f"Slack, as the local receiver showed it: {len(result.slack_messages)} messages"
        console.print(Panel(shown, title=title, title_align="left"))

    where = "\n".join(f"{k:<16} {v}" for k, v in result.links.items())
    console.print(Panel(where, title="Where to look"))

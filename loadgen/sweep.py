"""Capacity sweep: step the rate (or concurrency), find the knee, stop once past saturation.

Each step is a full `tollgate load` run judged by the SLO file's checks. The knee is the highest
load whose run met every check. The sweep stops early when two steps in a row fail the SLO, when
the generator becomes client-bound, or when the server is saturated: in open loop, completed
requests/s fall below SATURATION x the offered rate; in closed loop, adding users raised
throughput by less than FLAT_GAIN while E2E p50 grew by more than LATENCY_GROWTH.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from loadgen.capacity import lines as capacity_lines
from loadgen.gate import InvalidRun, Run, evaluate
from loadgen.report import write_json_atomic
from loadgen.slo import SLO
from tollgate.contracts.run_folder import RUN_SCHEMA_VERSION

SATURATION = 0.9
FLAT_GAIN = 0.05
LATENCY_GROWTH = 0.2


def point(load: float, run: Run, slo: SLO) -> dict[str, Any]:
    s = run.summary
    try:
        checks = evaluate(run, slo)
        failed = [c["name"] for c in checks if not c["passed"]]
    except InvalidRun as exc:
        failed = [str(exc)]
    if s["validity"]["client_bound"]:
        failed.append("client_bound (the generator, not the server, was measured)")
    metrics = s["metrics"]
    return {
        "load": load,
        "run_id": s["run_id"],
        "run_dir": str(run.path),
        "status": s["status"],
        "requests_per_s": s["throughput"]["requests_per_s"],
        "output_tokens_per_s": s["throughput"]["output_tokens_per_s"],
        "input_tokens_per_s": s["throughput"].get("input_tokens_per_s"),
        "offered_rate_per_s": s["throughput"]["offered_rate_per_s"],
        "goodput_per_s": s["goodput"]["requests_per_s"],
        "ttft_p99_ms": metrics["ttft_ms"]["p99"],
        "e2e_p50_ms": metrics["e2e_ms"]["p50"],
        "e2e_p99_ms": metrics["e2e_ms"]["p99"],
        "tpot_p50_ms": metrics["tpot_ms"]["p50"],
        "error_rate": s["requests"]["failed"] / max(1, s["requests"]["failed"] + s["requests"]["completed"]),
        "client_bound": s["validity"]["client_bound"],
        "passed": s["status"] == "complete" and not failed,
        "failed_checks": failed,
    }


def stop_reason(points: list[dict[str, Any]], mode: str) -> str | None:
    """Why the sweep should stop after the latest point, or None to go on."""
    last = points[-1]
    if last["client_bound"]:
        return "the load generator became the bottleneck (client_bound)"
    if len(points) >= 2 and not last["passed"] and not points[-2]["passed"]:
        return "two steps in a row failed the SLO"
    if mode == "rate" and last["requests_per_s"] < SATURATION * last["load"]:
        return f"saturated: completed {last['requests_per_s']:.2f} req/s < {SATURATION:.0%} of offered {last['load']:g}"
    if mode == "concurrency" and len(points) >= 2:
        prev = points[-2]
        gain = last["requests_per_s"] / prev["requests_per_s"] - 1 if prev["requests_per_s"] else math.inf
        growth = (last["e2e_p50_ms"] or 0) / (prev["e2e_p50_ms"] or math.inf) - 1
        if gain < FLAT_GAIN and growth > LATENCY_GROWTH:
            return f"saturated: throughput +{gain:.0%} while E2E p50 +{growth:.0%}"
    return None


def knee(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    passing = [p for p in points if p["passed"]]
    if not passing:
        return None
    best = max(passing, key=lambda p: p["load"])
    return {
        "load": best["load"],
        "run_id": best["run_id"],
        "requests_per_s": best["requests_per_s"],
        "goodput_per_s": best["goodput_per_s"],
    }


def knee_point(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The full sweep point of the knee (the capacity plan needs its token rates)."""
    best = knee(points)
    return next((p for p in points if best and p["run_id"] == best["run_id"]), None)


def write_sweep(
    out: Path,
    sweep_id: str,
    mode: str,
    points: list[dict[str, Any]],
    slo: SLO,
    reason: str | None,
    capacity: dict[str, Any] | None = None,
) -> Path:
    folder = out / sweep_id
    folder.mkdir(parents=True, exist_ok=True)
    result = {
        "schema_version": RUN_SCHEMA_VERSION,
        "sweep_id": sweep_id,
        "mode": mode,
        "points": points,
        "knee": knee(points),
        "slo": {"path": slo.path, "checks": [c.name for c in slo.checks], "goodput": slo.goodput},
        "created_at": time.time(),
        "stopped_because": reason,
    }
    if capacity is not None:
        result["capacity"] = capacity
    try:
        (folder / "sweep.html").write_text(render_plot(result), encoding="utf-8")
    except Exception as exc:  # the plot is a convenience; sweep.json is the result
        result["plot_error"] = f"{type(exc).__name__}: {exc}"
    write_json_atomic(folder / "sweep.json", result)
    return folder


def render_plot(result: dict[str, Any]) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    pts = result["points"]
    x = [p["requests_per_s"] for p in pts]
    labels = [f"{result['mode']} {p['load']:g}" for p in pts]
    for key in ("e2e_p50_ms", "e2e_p99_ms", "ttft_p99_ms"):
        fig.add_scatter(
            x=x,
            y=[p[key] for p in pts],
            mode="lines+markers+text",
            text=labels,
            name=key,
            textposition="top center",
        )
    if result["knee"]:
        fig.add_vline(
            x=result["knee"]["requests_per_s"],
            line_dash="dash",
            annotation_text=f"knee: {result['mode']} {result['knee']['load']:g}",
        )
    fig.update_layout(
        title=f"Sweep {result['sweep_id']}: throughput vs latency",
        xaxis_title="completed requests/s",
        yaxis_title="ms",
    )
    html = fig.to_html(include_plotlyjs="cdn")
    if result.get("capacity"):
        from html import escape

        items = "".join(f"<li>{escape(line)}</li>" for line in capacity_lines(result["capacity"]))
        html = html.replace("</body>", f"<h3>Capacity and cost</h3><ul>{items}</ul></body>")
    return html

"""Write a run folder: requests.parquet, report.html, locust.html, then summary.json (atomically, last).

The summary follows tollgate.contracts.run_folder; latency blocks come from the merged
full-resolution histograms, throughput from the request rows over the measured window.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loadgen.collector import METRICS, Collector
from loadgen.timeline import INCOMPLETE
from tollgate.contracts.run_folder import (
    INCOMPLETE_PREFIX,
    LATENCY_METRICS,
    LENGTH_FIELDS,
    LENGTH_KEYS,
    LENGTHS,
    PERCENTILE_KEYS,
    REQUEST_COLUMNS,
    RUN_SCHEMA_VERSION,
    STOPPED_EARLY,
    TURNS,
)

SECRET_KEYS = ("api_key",)
PARTIAL_ROWS = "requests.partial.jsonl"  # rows flushed during the run; removed once the folder is written


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=json_default, allow_nan=False))
    os.replace(tmp, path)


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def requests_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in REQUEST_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series(dtype="float64")
    extra = [c for c in frame.columns if c not in REQUEST_COLUMNS]
    return frame[list(REQUEST_COLUMNS) + extra].sort_values("send_s", kind="stable").reset_index(drop=True)


def good_requests(frame: pd.DataFrame, slo: dict[str, float]) -> pd.Series:
    """Requests that completed and met every per-request SLO (undefined metrics, e.g. TPOT of a 1-token reply, pass)."""
    good = frame["ok"].astype(bool)
    for metric, limit in slo.items():
        values = frame[metric] if metric in frame else pd.Series(np.nan, index=frame.index)
        good &= values.isna() | (values <= limit)
    return good


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_summary(
    collector: Collector,
    frame: pd.DataFrame,
    config: dict[str, Any],
    status: str,
    started_at: float,
    ended_at: float,
    validity: dict[str, Any],
    notes: list[str],
    stopped_early: dict[str, Any] | None = None,
) -> dict[str, Any]:
    duration = max(ended_at - started_at, 1e-9)
    ok = frame[frame["ok"].astype(bool)] if len(frame) else frame
    open_loop = config.get("rate") is not None
    names = METRICS if open_loop else LATENCY_METRICS
    slo = config.get("goodput_slo") or {}
    good = int(good_requests(frame, slo).sum()) if len(frame) else 0
    errors = Counter(frame.loc[~frame["ok"].astype(bool), "error"]) if len(frame) else Counter()
    incomplete = errors.pop(INCOMPLETE, 0)
    prompt = ok["prompt_tokens"][ok["prompt_tokens"] >= 0].sum() if len(ok) else 0
    summary = {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": config["run_id"],
        "name": config.get("name"),
        "status": status,
        "notes": notes,
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_s": round(duration, 3),
        "config": {k: v for k, v in config.items() if k not in SECRET_KEYS and k != "server"},
        "environment": environment(config),
        "server": config.get("server", {}),
        "metrics": {name: collector.histograms[name].summary() for name in names},
        "throughput": {
            "requests_per_s": len(ok) / duration,
            "output_tokens_per_s": float(ok["output_tokens"].sum()) / duration if len(ok) else 0.0,
            "input_tokens_per_s": float(prompt) / duration,
            "offered_rate_per_s": float(config["rate"]) if open_loop else len(frame) / duration,
            "sent_per_s": len(frame) / duration,
            "achieved_send_rate_per_s": achieved_rate(frame),
        },
        "goodput": {
            "requests_per_s": good / duration,
            "fraction": good / len(frame) if len(frame) else 0.0,
            "slo": slo,
        },
        "requests": {
            "sent": len(frame),
            "completed": len(ok),
            "failed": len(frame) - len(ok) - incomplete,
            "incomplete": incomplete,
            "output_tokens_estimated": int(ok["output_tokens_estimated"].astype(bool).sum())
            if len(ok)
            else 0,
        },
        "errors": dict(errors),
        "warnings": {**dict(collector.warnings), **token_warnings(config, len(frame))},
        "validity": validity,
        LENGTHS: lengths(ok, config),
    }
    if stopped_early:
        summary[STOPPED_EARLY] = stopped_early
    if len(ok) and "turn" in ok and (ok["turn"] > 0).any():
        summary[TURNS] = per_turn(ok)
    return _clean(summary)


def token_warnings(config: dict[str, Any], sent: int) -> dict[str, int]:
    """Warnings of the run's TokenPlan (loadgen.tokens), counted over the requests they concern."""
    tokens = config.get("tokens") or {}
    return {text: sent for text in tokens.get("warnings", [])}


def _length_block(values: pd.Series) -> dict[str, Any]:
    arr = values.to_numpy(dtype=float)
    if not len(arr):
        return {key: None for key in LENGTH_KEYS} | {"count": 0}
    stats = {
        "mean": arr.mean(),
        "p50": np.percentile(arr, 50),
        "p99": np.percentile(arr, 99),
        "count": len(arr),
    }
    return {key: float(stats[key]) if key != "count" else int(stats[key]) for key in LENGTH_KEYS}


def lengths(ok: pd.DataFrame, config: dict[str, Any]) -> dict[str, Any]:
    """Requested vs achieved input and output lengths (contract LENGTHS), over completed requests."""
    out: dict[str, Any] = {"tokenizer": (config.get("tokens") or {}).get("source", "")}
    if not len(ok) or "requested_input_tokens" not in ok:
        return out | {name: {} for name in LENGTH_FIELDS}
    input_known = ok[(ok["requested_input_tokens"] >= 0) & (ok["prompt_tokens"] >= 0)]
    output_known = ok[(ok["requested_output_tokens"] >= 0) & ~ok["output_tokens_estimated"].astype(bool)]
    fields = {
        "input_tokens": {
            "requested": _length_block(input_known["requested_input_tokens"]),
            "achieved": _length_block(input_known["prompt_tokens"]),
        },
        "output_tokens": {
            "requested": _length_block(output_known["requested_output_tokens"]),
            "achieved": _length_block(output_known["output_tokens"]),
        },
        "template_tokens": {
            "achieved": _length_block(input_known["prompt_tokens"] - input_known["requested_input_tokens"])
        },
    }
    return out | {name: fields[name] for name in LENGTH_FIELDS}


def _latency_block(values: pd.Series) -> dict[str, Any]:
    arr = values.dropna().to_numpy(dtype=float)
    if not len(arr):
        return {key: None for key in PERCENTILE_KEYS} | {"count": 0}
    quantiles = np.percentile(arr, [50, 90, 95, 99, 99.9])
    block = dict(zip(PERCENTILE_KEYS[:5], (float(q) for q in quantiles), strict=True))
    return block | {"mean": float(arr.mean()), "count": len(arr)}


def per_turn(ok: pd.DataFrame) -> dict[str, Any]:
    """TTFT and E2E by turn index of multi-turn conversations (exact percentiles over the rows)."""
    out = {}
    for turn, rows in ok[ok["turn"] > 0].groupby("turn"):
        prompt = rows["prompt_tokens"][rows["prompt_tokens"] >= 0]
        out[str(int(turn))] = {
            "ttft_ms": _latency_block(rows["ttft_ms"]),
            "e2e_ms": _latency_block(rows["e2e_ms"]),
            "prompt_tokens_mean": float(prompt.mean()) if len(prompt) else None,
            "requests": len(rows),
        }
    return out


def achieved_rate(frame: pd.DataFrame) -> float | None:
    """Requests actually sent per second between the first and the last send: (n - 1) / span."""
    sends = frame["send_s"].dropna() if len(frame) else frame
    span = float(sends.max() - sends.min()) if len(sends) > 1 else 0.0
    return (len(sends) - 1) / span if span > 0 else None


def environment(config: dict[str, Any]) -> dict[str, Any]:
    from importlib.metadata import version

    import psutil

    from tollgate import __version__

    return {
        "tollgate": __version__,
        "locust": version("locust"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "mem_total_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "processes": config.get("processes", 1),
    }


def write_run(
    run_dir: Path,
    collector: Collector,
    config: dict[str, Any],
    status: str,
    started_at: float,
    ended_at: float,
    validity: dict[str, Any],
    notes: list[str] | None = None,
    locust_html: str | None = None,
    stopped_early: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write every file of the run folder; summary.json goes last. Returns the summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    notes = list(notes or [])
    frame = requests_frame(collector.rows)
    try:
        frame.to_parquet(run_dir / "requests.parquet", index=False)
    except ImportError:
        frame.to_csv(run_dir / "requests.csv", index=False)
    summary = build_summary(
        collector, frame, config, status, started_at, ended_at, validity, notes, stopped_early
    )
    if locust_html:
        (run_dir / "locust.html").write_text(locust_html, encoding="utf-8")
    try:
        (run_dir / "report.html").write_text(render_html(summary, frame), encoding="utf-8")
    except Exception as exc:  # a plotting problem must not cost the summary
        summary["notes"].append(f"report.html not written: {type(exc).__name__}: {exc}")
    write_json_atomic(run_dir / "summary.json", summary)
    (run_dir / PARTIAL_ROWS).unlink(missing_ok=True)
    return summary


def read_partial_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows flushed to requests.partial.jsonl; a line torn by a kill is skipped."""
    rows = []
    path = run_dir / PARTIAL_ROWS
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    return rows


def recover_rows(run_dir: Path) -> Collector:
    """Rebuild the results a killed generator had flushed to requests.partial.jsonl."""
    from loadgen.timeline import RequestRecord

    collector = Collector()
    for row in read_partial_rows(run_dir):
        try:
            collector.add(RequestRecord.from_row(row))
        except (ValueError, KeyError, TypeError):
            continue  # a row torn by the kill
    return collector


def render_html(summary: dict[str, Any], frame: pd.DataFrame) -> str:
    import plotly.graph_objects as go

    figures = []
    cdf = go.Figure()
    done = frame[frame["ok"].astype(bool)]
    for column in ("ttft_ms", "tpot_ms", "itl_mean_ms", "e2e_ms", "ttft_from_intended_ms"):
        values = np.sort(done[column].dropna().to_numpy()) if column in done else np.array([])
        if len(values):
            cdf.add_scatter(
                x=values, y=np.arange(1, len(values) + 1) / len(values), name=column, mode="lines"
            )
    cdf.update_layout(title="Latency CDFs", xaxis_title="ms", yaxis_title="fraction", xaxis_type="log")
    figures.append(cdf)
    if len(frame):
        t0 = float(frame["send_s"].min())
        seconds = np.arange(0, math.ceil(float(np.nanmax(frame["end_s"])) - t0) + 1)
        ends = done["end_s"].to_numpy() - t0
        completed = np.histogram(ends, bins=np.append(seconds, seconds[-1] + 1))[0]
        tokens = np.histogram(ends, bins=np.append(seconds, seconds[-1] + 1), weights=done["output_tokens"])[
            0
        ]
        sends, finish = frame["send_s"].to_numpy() - t0, frame["end_s"].to_numpy() - t0
        in_flight = [int(((sends <= s) & (finish > s)).sum()) for s in seconds]
        over_time = go.Figure()
        over_time.add_bar(x=seconds, y=completed, name="completed req/s")
        over_time.add_scatter(x=seconds, y=tokens, name="output tokens/s", yaxis="y2")
        over_time.add_scatter(x=seconds, y=in_flight, name="in flight (concurrency)", mode="lines")
        over_time.update_layout(
            title="Throughput and concurrency over time",
            xaxis_title="s since start",
            yaxis2={"overlaying": "y", "side": "right", "title": "tokens/s"},
        )
        figures.append(over_time)
        latency = go.Figure()
        latency.add_scatter(
            x=done["send_s"] - t0, y=done["ttft_ms"], mode="markers", name="TTFT ms", marker={"size": 4}
        )
        latency.add_scatter(
            x=done["send_s"] - t0, y=done["tpot_ms"], mode="markers", name="TPOT ms", marker={"size": 4}
        )
        latency.update_layout(
            title="TTFT and TPOT over time",
            xaxis_title="send time, s since start",
            yaxis_title="ms",
            yaxis_type="log",
        )
        figures.append(latency)
    # plotly.js is embedded once so the report is one self-contained file that renders offline
    # (CI artifacts, air-gapped clusters); the CDN variant showed no charts on such machines.
    body = "\n".join(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures))
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(
            f"<td>{_fmt(block.get(k))}</td>" for k in ("p50", "p90", "p95", "p99", "p999", "mean", "count")
        )
        + "</tr>"
        for name, block in summary["metrics"].items()
    )
    facts = {
        "status": summary["status"],
        "requests completed / failed": f"{summary['requests']['completed']} / {summary['requests']['failed']}",
        "throughput req/s": _fmt(summary["throughput"]["requests_per_s"]),
        "output tokens/s": _fmt(summary["throughput"]["output_tokens_per_s"]),
        "goodput req/s": _fmt(summary["goodput"]["requests_per_s"]),
        "client bound": summary["validity"].get("client_bound"),
        "errors": ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) or "none",
    }
    fact_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items()
    )
    turn_rows = "".join(
        f"<tr><td>{html.escape(turn)}</td><td>{block['requests']}</td><td>{_fmt(block['prompt_tokens_mean'])}</td>"
        + "".join(f"<td>{_fmt(block['ttft_ms'].get(k))}</td>" for k in ("p50", "p90", "p99"))
        + "</tr>"
        for turn, block in summary.get(TURNS, {}).items()
    )
    if turn_rows:
        body = (
            "<h2>Multi-turn: TTFT by turn (ms)</h2><table><tr><th>turn</th><th>requests</th>"
            f"<th>prompt tokens</th><th>p50</th><th>p90</th><th>p99</th></tr>{turn_rows}</table>\n{body}"
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Tollgate run {html.escape(summary["run_id"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style>
</head><body><h1>Tollgate run {html.escape(summary["run_id"])}</h1><table>{fact_rows}</table>
<h2>Latency (ms)</h2><table><tr><th>metric</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>mean</th><th>count</th></tr>{rows}</table>
{body}</body></html>"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def server_went_away(rows: list[dict[str, Any]], tail: int = 3) -> bool:
    """True when the last `tail` finished requests (by send time) all failed without an HTTP answer
    (status 0: refused, reset, timed out): the server died or became unreachable during the run, so
    the run is failed even if requests completed before that. Requests cut off by the end of the
    run are not finished and do not count."""
    finished = [r for r in rows if not str(r.get("error", "")).startswith(INCOMPLETE_PREFIX)]
    finished.sort(key=lambda r: r["send_s"] if r["send_s"] == r["send_s"] else float("inf"))
    last = finished[-tail:]
    return len(last) == tail and all(not r["ok"] and int(r.get("status") or 0) == 0 for r in last)

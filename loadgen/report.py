"""Write a run folder: requests.parquet, report.html, locust.html, then summary.json (atomically, last).

The summary follows tollgate.contracts.run_folder; latency blocks come from the merged
full-resolution histograms, throughput from the request rows over the measured window. Rows stream
from requests.partial.jsonl in bounded batches (loadgen.rowstream): the final write of a 24-hour soak
holds one batch, never the whole run.
"""

from __future__ import annotations

import html
import itertools
import math
import os
import platform
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loadgen.collector import METRICS, Collector
from loadgen.histogram import Histogram, bucket_midpoint
from loadgen.rowstream import RequestsWriter, RowStats, iter_jsonl
from loadgen.timeline import INCOMPLETE
from tollgate.contracts import files
from tollgate.contracts.run_folder import (
    LATENCY_METRICS,
    LENGTH_FIELDS,
    LENGTHS,
    PERCENTILE_KEYS,
    RUN_SCHEMA_VERSION,
    STOPPED_EARLY,
    TURNS,
)

SECRET_KEYS = ("api_key",)
PARTIAL_ROWS = "requests.partial.jsonl"  # rows flushed during the run; removed once the folder is written
RUN_CONFIG = "config.partial.json"  # the run's config for `tollgate load --recover`; removed likewise


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """A run folder's JSON file, crash-safe: strict JSON (NaN refused), numpy scalars as numbers."""
    files.write_json_atomic(path, payload, default=files.numpy_scalars, allow_nan=False)


json_default = files.numpy_scalars  # numpy scalars as numbers (the partial rows use it too)


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
    stats: RowStats,
    config: dict[str, Any],
    status: str,
    started_at: float,
    ended_at: float,
    validity: dict[str, Any],
    notes: list[str],
    stopped_early: dict[str, Any] | None = None,
) -> dict[str, Any]:
    duration = max(ended_at - started_at, 1e-9)
    open_loop = config.get("rate") is not None
    names = METRICS if open_loop else LATENCY_METRICS
    errors = Counter(stats.errors)
    incomplete = errors.pop(INCOMPLETE, 0)
    sent, done = stats.sent, stats.completed
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
            "requests_per_s": done / duration,
            "output_tokens_per_s": stats.output_tokens / duration,
            "input_tokens_per_s": stats.prompt_tokens / duration,
            "offered_rate_per_s": float(config["rate"]) if open_loop else sent / duration,
            "sent_per_s": sent / duration,
            "achieved_send_rate_per_s": stats.achieved_rate(),
        },
        "goodput": {
            "requests_per_s": stats.good / duration,
            "fraction": stats.good / sent if sent else 0.0,
            "slo": stats.slo,
        },
        "requests": {
            "sent": sent,
            "completed": done,
            "failed": sent - done - incomplete,
            "incomplete": incomplete,
            "output_tokens_estimated": stats.estimated,
        },
        "errors": dict(errors),
        "warnings": {**dict(collector.warnings), **token_warnings(config, sent)},
        "validity": validity,
        LENGTHS: lengths(stats, config),
    }
    if stopped_early:
        summary[STOPPED_EARLY] = stopped_early
    if stats.turns:
        summary[TURNS] = per_turn(stats)
    return _clean(summary)


def token_warnings(config: dict[str, Any], sent: int) -> dict[str, int]:
    """Warnings of the run's TokenPlan (loadgen.tokens), counted over the requests they concern."""
    tokens = config.get("tokens") or {}
    return {text: sent for text in tokens.get("warnings", [])}


def lengths(stats: RowStats, config: dict[str, Any]) -> dict[str, Any]:
    """Requested vs achieved input and output lengths (contract LENGTHS), over completed requests."""
    out: dict[str, Any] = {"tokenizer": (config.get("tokens") or {}).get("source", "")}
    dist = stats.lengths
    fields = {
        "input_tokens": {"requested": dist["in_req"].block(), "achieved": dist["in_got"].block()},
        "output_tokens": {"requested": dist["out_req"].block(), "achieved": dist["out_got"].block()},
        "template_tokens": {"achieved": dist["template"].block()},
    }
    return out | {name: fields[name] for name in LENGTH_FIELDS}


def _latency_block(hist: Histogram) -> dict[str, Any]:
    block = hist.summary()
    return {key: block[key] for key in PERCENTILE_KEYS}


def per_turn(stats: RowStats) -> dict[str, Any]:
    """TTFT and E2E by turn index of multi-turn conversations (histogram percentiles, like `metrics`)."""
    return {
        str(turn): {
            "ttft_ms": _latency_block(t.ttft),
            "e2e_ms": _latency_block(t.e2e),
            "prompt_tokens_mean": t.prompt_total / t.prompt_count if t.prompt_count else None,
            "requests": t.requests,
        }
        for turn, t in sorted(stats.turns.items())
    }


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
    recover: bool = False,
) -> dict[str, Any]:
    """Write every file of the run folder; summary.json goes last. Returns the summary.

    The rows are those flushed to requests.partial.jsonl, then `collector.rows` (not flushed yet);
    they stream to requests.parquet in batches. The run's window opens with its first send
    (`started_at` when nothing was sent). A complete run is marked failed when no request completed
    or the server went away. `recover`: rebuild the histograms from the rows (the generator that
    kept them was killed). requests.partial.jsonl goes only after summary.json is in place, so a
    kill during this write loses nothing: the next `tollgate load` recovery starts again from it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    notes = list(notes or [])
    rows = itertools.chain(iter_jsonl(run_dir / PARTIAL_ROWS), collector.rows)
    stats = RowStats(config.get("goodput_slo") or {})
    writer = RequestsWriter(run_dir)
    for row in _recovered(rows, collector) if recover else rows:
        stats.add(row)
        writer.add(row)
    writer.close()
    if recover and stats.sent:
        notes.append(f"{stats.sent} requests recovered from the rows it had flushed")
    if status == "complete" and stats.sent and not stats.completed:
        status = "failed"
        notes.append("no request completed")
    elif status == "complete" and stats.server_went_away():
        status = "failed"
        notes.append("the server stopped answering: the run's last requests all failed to connect")
    started = stats.send_min if stats.sends else started_at
    summary = build_summary(
        collector, stats, config, status, started, ended_at, validity, notes, stopped_early
    )
    if locust_html:
        (run_dir / "locust.html").write_text(locust_html, encoding="utf-8")
    try:
        (run_dir / "report.html").write_text(render_html(summary, stats), encoding="utf-8")
    except Exception as exc:  # a plotting problem must not cost the summary
        summary["notes"].append(f"report.html not written: {type(exc).__name__}: {exc}")
    write_json_atomic(run_dir / "summary.json", summary)
    (run_dir / PARTIAL_ROWS).unlink(missing_ok=True)
    (run_dir / RUN_CONFIG).unlink(missing_ok=True)
    return summary


def _recovered(rows: Iterable[dict[str, Any]], collector: Collector) -> Iterator[dict[str, Any]]:
    """The rows a killed generator had flushed, each also recorded into the histograms."""
    from loadgen.timeline import RequestRecord

    for row in rows:
        try:
            collector.record(RequestRecord.from_row(row))
        except (ValueError, KeyError, TypeError):
            continue  # a row torn by the kill
        yield row


def _cdf(hist: Histogram) -> tuple[list[float], list[float]]:
    """(value, fraction <= value) at each of the histogram's buckets (zeros first)."""
    xs, ys, seen = [], [], hist.zeros
    if hist.zeros:
        xs.append(0.0)
        ys.append(seen / hist.count)
    for index in sorted(hist.buckets):
        seen += hist.buckets[index]
        xs.append(min(max(bucket_midpoint(index), hist.min), hist.max))
        ys.append(seen / hist.count)
    return xs, ys


def render_html(summary: dict[str, Any], stats: RowStats) -> str:
    import plotly.graph_objects as go

    figures = []
    cdf = go.Figure()
    for column, hist in stats.cdf.items():
        if hist.count:
            x, y = _cdf(hist)
            cdf.add_scatter(x=x, y=y, name=column, mode="lines")
    cdf.update_layout(title="Latency CDFs", xaxis_title="ms", yaxis_title="fraction", xaxis_type="log")
    figures.append(cdf)
    if stats.sends:
        t0 = math.floor(stats.send_min)
        last = max(math.ceil(stats.end_max) if stats.end_max > -math.inf else t0, t0)
        seconds = np.arange(t0, last + 1)
        completed = [stats.completed_by_s.get(int(s), 0) for s in seconds]
        tokens = [stats.tokens_by_s.get(int(s), 0) for s in seconds]
        in_flight = np.cumsum([stats.in_flight_delta.get(int(s), 0) for s in seconds])
        x = seconds - t0
        over_time = go.Figure()
        over_time.add_bar(x=x, y=completed, name="completed req/s")
        over_time.add_scatter(x=x, y=tokens, name="output tokens/s", yaxis="y2")
        over_time.add_scatter(x=x, y=in_flight, name="in flight (concurrency)", mode="lines")
        over_time.update_layout(
            title="Throughput and concurrency over time",
            xaxis_title="s since start",
            yaxis2={"overlaying": "y", "side": "right", "title": "tokens/s"},
        )
        figures.append(over_time)
        points = sorted(stats.scatter)
        sends = [p[0] - t0 for p in points]
        latency = go.Figure()
        latency.add_scatter(
            x=sends, y=[p[1] for p in points], mode="markers", name="TTFT ms", marker={"size": 4}
        )
        latency.add_scatter(
            x=sends, y=[p[2] for p in points], mode="markers", name="TPOT ms", marker={"size": 4}
        )
        sampled = f" (a sample of {len(points)})" if len(points) < stats.completed else ""
        latency.update_layout(
            title=f"TTFT and TPOT over time{sampled}",
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


def server_went_away(rows: Iterable[dict[str, Any]], tail: int = 3) -> bool:
    """True when the last `tail` finished requests (by send time) all failed without an HTTP answer
    (status 0: refused, reset, timed out): the server died or became unreachable during the run, so
    the run is failed even if requests completed before that. Requests cut off by the end of the
    run are not finished and do not count. (write_run folds this in as the rows stream: RowStats.)"""
    stats = RowStats({}, tail)
    for row in rows:
        stats.add(row)
    return stats.server_went_away()

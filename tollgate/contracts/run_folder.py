"""Run folder contract (loadgen -> gate, sweep, dashboards).

    reports/runs/<run-id>/
        summary.json        versioned summary (below); written last, atomically (tmp + rename)
        requests.parquet    one row per request (REQUEST_COLUMNS); requests.csv when pyarrow is missing
                            (REQUEST_TYPES; sorted by send_s within each row group, not across the file)
        requests.partial.jsonl, config.partial.json   while running: rows flushed so far and the config;
                            removed after summary.json (`tollgate load --recover` rebuilds a folder from them)
        locust.html         Locust's own HTML report
        report.html         Tollgate's HTML report with plots
        locust_stats*.csv   Locust's CSV statistics
        gate.json           written by `tollgate gate` (GATE_FIELDS), absent until a gate ran
    reports/sweeps/<sweep-id>/sweep.json   written by `tollgate sweep` (SWEEP_FIELDS)

summary.json has at least the keys in SUMMARY_REQUIRED (dotted paths). Every latency block
(`metrics.<name>`) holds p50 p90 p95 p99 p999 mean count, in milliseconds. `status` is
"complete" | "failed" | "interrupted"; a run folder whose summary.json is missing is partial.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RUN_SCHEMA_VERSION = 1

PERCENTILE_KEYS = ("p50", "p90", "p95", "p99", "p999", "mean", "count")
LATENCY_METRICS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")
OPEN_LOOP_METRICS = ("ttft_from_intended_ms", "e2e_from_intended_ms", "client_queue_ms")

SUMMARY_REQUIRED = (
    "schema_version",
    "run_id",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "config",
    "environment",
    "server",
    "metrics.ttft_ms",
    "metrics.itl_ms",
    "metrics.tpot_ms",
    "metrics.e2e_ms",
    "throughput.requests_per_s",
    "throughput.output_tokens_per_s",
    "throughput.offered_rate_per_s",
    "goodput",
    "requests.completed",
    "requests.failed",
    "errors",
    "validity.client_bound",
)

# Columns of requests.parquet; times are unix seconds, durations milliseconds.
REQUEST_COLUMNS = (
    "request_id",
    "scenario",
    "worker",
    "intended_send_s",  # NaN in closed loop
    "send_s",
    "first_token_s",
    "end_s",
    "ttft_ms",
    "e2e_ms",
    "tpot_ms",
    "itl_mean_ms",
    "client_queue_ms",  # send - intended, NaN in closed loop
    "prompt_tokens",
    "output_tokens",
    "output_tokens_estimated",  # bool
    "n_chunks",
    "status",  # HTTP status, 0 for connection failures
    "ok",  # bool: completed without error
    "error",  # reason string, "" when ok
)

# Arrow types of requests.parquet: REQUEST_COLUMNS, then the generator's extension columns. One fixed
# schema, so the file is written in bounded batches from the rows flushed during the run.
REQUEST_TYPES = {
    "request_id": "string",
    "scenario": "string",
    "worker": "int64",
    "intended_send_s": "float64",
    "send_s": "float64",
    "first_token_s": "float64",
    "end_s": "float64",
    "ttft_ms": "float64",
    "e2e_ms": "float64",
    "tpot_ms": "float64",
    "itl_mean_ms": "float64",
    "client_queue_ms": "float64",
    "prompt_tokens": "int64",
    "output_tokens": "int64",
    "output_tokens_estimated": "bool",
    "n_chunks": "int64",
    "status": "int64",
    "ok": "bool",
    "error": "string",
    "ttft_from_intended_ms": "float64",
    "e2e_from_intended_ms": "float64",
    "chunk_ms": "list<float64>",  # each token chunk's arrival - send
    "chunk_tokens": "list<int64>",  # tokens each chunk carried, -1 when it did not say
    "stream": "bool",
    "requested_input_tokens": "int64",  # -1: not known
    "requested_output_tokens": "int64",
    "turn": "int64",  # 0 outside multi-turn conversations
}

# Optional summary key of a run stopped because its first requests all failed with the same 4xx:
# {requests, status, reason, message (the server's), request ("POST URL"), hint}; `tollgate load` exits 2.
STOPPED_EARLY = "stopped_early"

# Optional summary key: the workload's lengths as asked vs as the server counted them (its `usage`).
# lengths = {"tokenizer": "local:PATH" | "server:URL/tokenize" | "" (prompts sized in words),
#            "input_tokens": {"requested": B, "achieved": B}, "output_tokens": {"requested": B, "achieved": B},
#            "template_tokens": {"achieved": B}}   (prompt tokens beyond the content: chat template, BOS)
# where each block B holds LENGTH_KEYS over the completed requests that know both sides.
LENGTHS = "lengths"
LENGTH_KEYS = ("mean", "p50", "p99", "count")
LENGTH_FIELDS = ("input_tokens", "output_tokens", "template_tokens")

# Optional summary key of multi-turn runs: per turn index ("1", "2", ...) a block
# {"ttft_ms": latency block, "e2e_ms": latency block, "prompt_tokens_mean": float, "requests": int}.
TURNS = "turns"

# `error` of a request the end of the run cut off in flight starts with this; such rows are neither
# completed nor failed (summary `requests.incomplete`).
INCOMPLETE_PREFIX = "incomplete"

GATE_FIELDS = ("schema_version", "run_id", "verdict", "exit_code", "checks", "baseline_run_id", "created_at")
SWEEP_FIELDS = ("schema_version", "sweep_id", "mode", "points", "knee", "slo", "created_at")


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def validate_summary(summary: Any) -> list[str]:
    """Problems with a decoded summary.json; an empty list means valid."""
    if not isinstance(summary, Mapping):
        return [f"summary must be a JSON object, got {type(summary).__name__}"]
    problems = []
    for key in SUMMARY_REQUIRED:
        try:
            _get(summary, key)
        except KeyError:
            problems.append(f"missing '{key}'")
    for name in LATENCY_METRICS:
        block = summary.get("metrics", {}).get(name) if isinstance(summary.get("metrics"), Mapping) else None
        if isinstance(block, Mapping):
            problems.extend(f"metrics.{name} is missing '{k}'" for k in PERCENTILE_KEYS if k not in block)
    version = summary.get("schema_version")
    if isinstance(version, int) and version > RUN_SCHEMA_VERSION:
        problems.append(
            f"schema_version {version} is newer than this Tollgate understands ({RUN_SCHEMA_VERSION})"
        )
    return problems

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

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

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

SUMMARY_FILE = "summary.json"
REQUEST_FILES = ("requests.parquet", "requests.csv")  # the first that exists is the folder's records
REQUEST_REQUIRED = ("send_s", "end_s", "ok")  # without them a requests file cannot be used at all

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


class RunFolderError(ValueError):
    """A run folder file that is missing or cannot be used; the message names the file and why."""


def read_json_file(path: str | Path) -> Any:
    """Decoded JSON of one file, or RunFolderError saying where it is broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path}: cannot be read ({exc})") from None


def read_summary(folder: str | Path, validate: bool = True) -> dict[str, Any]:
    """The folder's summary.json, checked against SUMMARY_REQUIRED unless validate=False (then only
    required to be a JSON object). RunFolderError when it is missing, unreadable or invalid."""
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise RunFolderError(f"{folder}: no {SUMMARY_FILE} (not a run folder, or a partial run)")
    summary = read_json_file(path)
    if validate:
        problems = validate_summary(summary)
    elif not isinstance(summary, Mapping):
        problems = [f"summary must be a JSON object, got {type(summary).__name__}"]
    else:
        problems = []
    if problems:
        raise RunFolderError(f"{path}: {'; '.join(problems)}")
    return summary


def requests_file(folder: str | Path) -> Path | None:
    """requests.parquet, else requests.csv, else None (a folder without per-request records)."""
    for name in REQUEST_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def read_requests(path: str | Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Per-request records of a requests.parquet or requests.csv file (pandas, imported here).

    columns: keep only these (those the file has); None keeps every column, extensions included.
    `ok` comes back boolean and `error` a string ("" when ok) whichever format the file is in.
    RunFolderError when the file cannot be read or lacks REQUEST_REQUIRED."""
    import pandas as pd

    path = Path(path)
    wanted = None if columns is None else set(columns)
    try:
        if path.suffix == ".parquet":  # read only the wanted columns: producers add bulky per-chunk lists
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            keep = None if wanted is None else [c for c in names if c in wanted] or None
            frame = pd.read_parquet(path, columns=keep)
        else:
            usecols = None if wanted is None else (lambda c: c in wanted)
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""], usecols=usecols)
    except Exception as exc:  # pyarrow and the csv parser raise many types for a damaged file
        raise RunFolderError(
            f"{path}: cannot be read as {path.suffix[1:]} ({type(exc).__name__}: {exc})"
        ) from exc
    missing = [c for c in REQUEST_REQUIRED if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path}: missing columns {missing}; expected the columns in {REQUEST_COLUMNS}")
    if pd.api.types.is_bool_dtype(frame["ok"]) or pd.api.types.is_numeric_dtype(frame["ok"]):
        frame["ok"] = frame["ok"].astype(bool)
    else:  # text such as "True"/"false" (a CSV column with blanks is not parsed as booleans)
        frame["ok"] = frame["ok"].astype(str).str.lower().isin(["true", "1"])
    if "error" in frame.columns:
        frame["error"] = frame["error"].fillna("").astype(str)
    return frame

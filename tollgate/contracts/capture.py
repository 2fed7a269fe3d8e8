"""Capture log contract (server -> drift): JSONL, one line per finished request.

Any server can produce it (the reference server natively; others through a proxy or log
adapter). Fields, all present on every line (null where not applicable):

    schema_version     int, CAPTURE_SCHEMA_VERSION
    timestamp          float, unix seconds when the request finished
    request_id         str
    endpoint           "/v1/completions" | "/v1/chat/completions"
    model              str, the served model name
    stream             bool
    prompt_tokens      int
    completion_tokens  int
    max_tokens         int | null
    temperature        float | null
    top_p              float | null
    top_k              int | null
    n_messages         int | null (null for /v1/completions)
    finish_reason      "stop" | "length" | "abort" | "error"
    queue_s            float | null, arrival to first schedule
    ttft_s             float | null, arrival to first token
    e2e_s              float | null, arrival to finish
    prompt_profile     dict from tollgate.contracts.sketch.prompt_profile (no raw text)
    prompt_text        str, ONLY when the operator enabled raw text capture (--capture-text)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CAPTURE_SCHEMA_VERSION = 1

ENDPOINTS = ("/v1/completions", "/v1/chat/completions")
FINISH_REASONS = ("stop", "length", "abort", "error")

# field -> accepted python types (None allowed where listed)
CAPTURE_FIELDS: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "timestamp": (float, int),
    "request_id": (str,),
    "endpoint": (str,),
    "model": (str,),
    "stream": (bool,),
    "prompt_tokens": (int,),
    "completion_tokens": (int,),
    "max_tokens": (int, type(None)),
    "temperature": (float, int, type(None)),
    "top_p": (float, int, type(None)),
    "top_k": (int, type(None)),
    "n_messages": (int, type(None)),
    "finish_reason": (str,),
    "queue_s": (float, int, type(None)),
    "ttft_s": (float, int, type(None)),
    "e2e_s": (float, int, type(None)),
    "prompt_profile": (dict,),
}
PROFILE_FIELDS = ("chars", "words", "script_mix", "non_text_share", "system_fingerprint", "sketch")


def validate_capture_record(record: Any) -> list[str]:
    """Problems with one decoded capture line; an empty list means valid."""
    if not isinstance(record, Mapping):
        return [f"expected a JSON object, got {type(record).__name__}"]
    problems: list[str] = []
    for name, types in CAPTURE_FIELDS.items():
        if name not in record:
            problems.append(f"missing field '{name}'")
            continue
        value = record[name]
        if isinstance(value, bool) and bool not in types:
            problems.append(f"field '{name}' must be {'/'.join(t.__name__ for t in types)}, got bool")
        elif not isinstance(value, types):
            problems.append(
                f"field '{name}' must be {'/'.join(t.__name__ for t in types)}, got {type(value).__name__}"
            )
    if record.get("schema_version") not in (None, CAPTURE_SCHEMA_VERSION) and isinstance(
        record.get("schema_version"), int
    ):
        problems.append(
            f"schema_version {record['schema_version']} is not supported (expected {CAPTURE_SCHEMA_VERSION})"
        )
    if isinstance(record.get("endpoint"), str) and record["endpoint"] not in ENDPOINTS:
        problems.append(f"endpoint '{record['endpoint']}' is not one of {', '.join(ENDPOINTS)}")
    if isinstance(record.get("finish_reason"), str) and record["finish_reason"] not in FINISH_REASONS:
        problems.append(
            f"finish_reason '{record['finish_reason']}' is not one of {', '.join(FINISH_REASONS)}"
        )
    profile = record.get("prompt_profile")
    if isinstance(profile, Mapping):
        problems.extend(f"prompt_profile is missing '{f}'" for f in PROFILE_FIELDS if f not in profile)
    return problems

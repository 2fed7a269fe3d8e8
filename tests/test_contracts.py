import json

import numpy as np

from tollgate.contracts import (
    CAPTURE_SCHEMA_VERSION,
    prompt_profile,
    prompt_sketch,
    text_of_messages,
    validate_capture_record,
    validate_summary,
)


def _record(**over):
    rec = {
        "schema_version": CAPTURE_SCHEMA_VERSION,
        "timestamp": 1.0,
        "request_id": "r1",
        "endpoint": "/v1/chat/completions",
        "model": "tiny",
        "stream": True,
        "prompt_tokens": 5,
        "completion_tokens": 3,
        "max_tokens": 16,
        "temperature": 0.7,
        "top_p": 1.0,
        "top_k": None,
        "n_messages": 2,
        "finish_reason": "stop",
        "queue_s": 0.0,
        "ttft_s": 0.1,
        "e2e_s": 0.2,
        "prompt_profile": prompt_profile("hello world", "be nice"),
    }
    rec.update(over)
    return rec


def test_valid_capture_record_roundtrips_json():
    rec = json.loads(json.dumps(_record()))
    assert validate_capture_record(rec) == []


def test_capture_record_problems_are_named():
    rec = _record(prompt_tokens="5", finish_reason="exploded")
    del rec["model"]
    problems = validate_capture_record(rec)
    assert "missing field 'model'" in problems
    assert any("prompt_tokens" in p and "str" in p for p in problems)
    assert any("exploded" in p for p in problems)
    assert validate_capture_record([1]) == ["expected a JSON object, got list"]


def test_sketch_is_stable_normalised_and_text_free():
    a = prompt_sketch("The cat sat on the mat")
    assert a == prompt_sketch("the CAT sat on the mat")
    assert abs(np.linalg.norm(a) - 1.0) < 1e-3
    assert prompt_sketch("") == [0.0] * 64
    profile = prompt_profile("secret password hunter2")
    assert "hunter2" not in json.dumps(profile)


def test_profile_scripts_and_non_text():
    p = prompt_profile("abc где 漢字 ☃☃")
    mix = p["script_mix"]
    assert mix["latin"] == 0.375 and mix["cyrillic"] == 0.375 and mix["cjk"] == 0.25
    assert p["non_text_share"] == round(2 / len("abc где 漢字 ☃☃"), 4)


def test_text_of_messages_handles_parts_and_system():
    text, system = text_of_messages(
        [{"role": "system", "content": "sys"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    )
    assert text == "sys\nhi" and system == "sys"


def test_summary_validation_names_missing_keys():
    problems = validate_summary({"schema_version": 1, "metrics": {"ttft_ms": {"p50": 1}}})
    assert "missing 'run_id'" in problems
    assert any("metrics.ttft_ms is missing 'p99'" in p for p in problems)

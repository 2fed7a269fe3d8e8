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
from tollgate.contracts.run_folder import REQUEST_COLUMNS


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


def test_run_folder_reader_names_what_is_wrong(tmp_path):
    import pytest

    from tollgate.contracts.run_folder import RunFolderError, read_summary

    with pytest.raises(RunFolderError, match="no summary.json"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text('{"status":\n  oops}')
    with pytest.raises(RunFolderError, match=r"summary.json:2: not valid JSON"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text('{"status": "failed"}')
    with pytest.raises(RunFolderError, match="missing 'run_id'"):
        read_summary(tmp_path)
    assert read_summary(tmp_path, validate=False) == {"status": "failed"}
    (tmp_path / "summary.json").write_text("[1]")
    with pytest.raises(RunFolderError, match="must be a JSON object, got list"):
        read_summary(tmp_path, validate=False)


def test_requests_read_the_same_from_parquet_and_csv(tmp_path):
    import pandas as pd
    import pytest

    from tollgate.contracts.run_folder import RunFolderError, read_requests, requests_file

    assert requests_file(tmp_path) is None
    rows = pd.DataFrame(
        {
            "send_s": [1.0, 2.0, 3.0],
            "end_s": [1.5, float("nan"), 3.5],
            "ok": [True, False, True],
            "error": ["", "HTTP 500", ""],
            "chunk_ms": [[1.0, 2.0], [], [3.0]],  # an extension column outside REQUEST_COLUMNS
        }
    )
    rows.drop(columns="chunk_ms").to_csv(tmp_path / "requests.csv", index=False)
    assert requests_file(tmp_path) == tmp_path / "requests.csv"
    rows.to_parquet(tmp_path / "requests.parquet")
    assert requests_file(tmp_path) == tmp_path / "requests.parquet"  # parquet first
    frames = [
        read_requests(tmp_path / "requests.parquet", REQUEST_COLUMNS),
        read_requests(tmp_path / "requests.csv"),
    ]
    for frame in frames:
        assert list(frame.columns) == ["send_s", "end_s", "ok", "error"]
        assert frame["ok"].dtype == bool and frame["ok"].tolist() == [True, False, True]
        assert frame["error"].tolist() == ["", "HTTP 500", ""] and frame["end_s"].isna().tolist() == [
            False,
            True,
            False,
        ]
    assert "chunk_ms" in read_requests(tmp_path / "requests.parquet").columns  # None keeps every column
    rows[["send_s", "ok"]].to_csv(tmp_path / "requests.csv", index=False)
    with pytest.raises(RunFolderError, match=r"requests.csv: missing columns \['end_s'\]"):
        read_requests(tmp_path / "requests.csv")
    (tmp_path / "requests.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(RunFolderError, match="requests.parquet: cannot be read as parquet"):
        read_requests(tmp_path / "requests.parquet")

"""The capture log: one valid contract line per finished request, no raw text, rotation by size."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.server.conftest import API_KEY
from tollgate.contracts.capture import validate_capture_record
from tollgate.contracts.capture_log import CaptureWriter, capture_record

pytestmark = pytest.mark.timeout(120)

SECRET = "my-secret-prompt-words"


def _records(path, wanted: set[str], timeout: float = 30.0) -> dict[str, dict]:
    """Lines of the capture file by request id, waiting (bounded) for the writer thread."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        records = {r["request_id"]: r for r in map(json.loads, lines)}
        if wanted <= set(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_burst_is_captured_completely(guarded_server, capture_path):
    chat = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": SECRET}]}
    requests = [
        ("/v1/completions", {"prompt": f"{SECRET} one", "max_tokens": 3, "temperature": 0.5, "top_k": 5}),
        ("/v1/completions", {"prompt": [1, 2, 3, 4], "max_tokens": 2, "stream": True}),
        ("/v1/chat/completions", chat | {"max_tokens": 2, "top_p": 0.8}),
        ("/v1/chat/completions", chat | {"max_tokens": 2, "stream": True}),
    ]

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=guarded_server.url, headers=headers, timeout=60) as c:
            return await asyncio.gather(*[c.post(path, json=body) for path, body in requests])

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * len(requests)
    ids = [r.headers["X-Request-Id"] for r in responses]
    records = _records(capture_path, set(ids))
    assert set(ids) <= set(records)
    for (path, body), rid in zip(requests, ids, strict=True):
        rec = records[rid]
        assert validate_capture_record(rec) == [], rec
        assert rec["endpoint"] == path and rec["model"] == "tiny"
        assert rec["stream"] is body.get("stream", False)
        assert rec["max_tokens"] == body["max_tokens"] and 0 < rec["completion_tokens"] <= body["max_tokens"]
        assert rec["finish_reason"] in ("stop", "length")
        assert rec["e2e_s"] >= rec["ttft_s"] >= rec["queue_s"] >= 0
        assert "prompt_text" not in rec and SECRET not in json.dumps(rec)
        assert rec["n_messages"] == (2 if path.endswith("chat/completions") else None)
    assert records[ids[0]]["temperature"] == 0.5 and records[ids[0]]["top_k"] == 5
    assert records[ids[2]]["prompt_profile"]["system_fingerprint"] is not None


def _record(include_text: bool, **kw) -> dict:
    return capture_record(
        request_id=kw.get("request_id", "r1"),
        endpoint="/v1/completions",
        model="tiny",
        stream=False,
        prompt_text="hello world",
        system_prompt=None,
        prompt_tokens=3,
        completion_tokens=2,
        max_tokens=2,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        n_messages=None,
        finish_reason="abort",
        times=None,
        include_text=include_text,
    )


def test_raw_text_only_when_asked():
    assert "prompt_text" not in _record(False)
    with_text = _record(True)
    assert with_text["prompt_text"] == "hello world" and validate_capture_record(with_text) == []


def test_rotation_by_size_keeps_every_line_whole(tmp_path):
    path = tmp_path / "cap.jsonl"
    line_bytes = len(json.dumps(_record(False), separators=(",", ":"))) + 1
    writer = CaptureWriter(path, max_bytes=line_bytes * 4, backups=10)
    for i in range(20):
        writer.submit(_record(False, request_id=f"r{i}"))
    writer.close()
    files = sorted(tmp_path.glob("cap.jsonl*"))
    assert len(files) >= 5
    ids = []
    for f in files:
        assert f.stat().st_size <= line_bytes * 4
        for line in f.read_text().splitlines():
            record = json.loads(line)
            assert validate_capture_record(record) == []
            ids.append(record["request_id"])
    assert sorted(ids) == sorted(f"r{i}" for i in range(20))


def test_a_line_cut_by_a_crash_does_not_swallow_the_next(tmp_path):
    path = tmp_path / "cap.jsonl"
    path.write_bytes(json.dumps(_record(False, request_id="whole")).encode() + b"\n" + b'{"request_id": "cut')
    writer = CaptureWriter(path)
    writer.submit(_record(False, request_id="after"))
    writer.close()
    whole, cut, after = path.read_text().splitlines()
    assert json.loads(whole)["request_id"] == "whole" and json.loads(after)["request_id"] == "after"

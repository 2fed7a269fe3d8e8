"""`tollgate proxy` in front of a real reference server: relays faithfully and writes the same capture."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from proxy.launch import start_proxy
from proxy.metrics import E2E_METRIC, REQUESTS_METRIC, TTFT_METRIC
from tests.support.servers import free_port, start_reference_server
from tollgate.contracts.capture import validate_capture_record

pytestmark = pytest.mark.timeout(180)

API_KEY = "proxy-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "alpha beta"}]}
# Fields the proxy must record exactly as the server does for the same request.
SAME_FIELDS = (
    "endpoint", "model", "stream", "prompt_tokens", "completion_tokens", "max_tokens", "n_messages",
    "finish_reason", "prompt_profile",
)  # fmt: skip
# Sampling fields: what the client sent; the server logs its resolved defaults, the proxy null.
SAMPLING = ("temperature", "top_p", "top_k")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    capture = tmp_path_factory.mktemp("upstream") / "server.jsonl"
    with start_reference_server("--capture", str(capture), "--api-key", API_KEY) as server:
        server.capture = capture
        yield server


@pytest.fixture(scope="module")
def proxied(upstream, tmp_path_factory):
    capture = tmp_path_factory.mktemp("proxy") / "proxy.jsonl"
    with start_proxy(upstream.url + "/v1", "--capture", str(capture)) as proxy:
        proxy.capture = capture
        yield proxy


def _lines(path: Path, n: int, timeout: float = 30.0) -> list[dict]:
    """The first n lines of a capture file, waiting (bounded) for the writer thread."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def _events(response: httpx.Response) -> list[dict | str]:
    out: list[dict | str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _post(base: str, path: str, body: dict, headers=AUTH) -> tuple[int, list[dict | str] | dict]:
    with httpx.stream("POST", base + path, json=body, headers=headers, timeout=60) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, _events(response)
        response.read()
        return response.status_code, response.json()


def test_capture_matches_the_servers_own(upstream, proxied):
    requests = [
        ("/v1/completions", {"prompt": "one two three", "max_tokens": 4, "temperature": 0.5, "top_k": 5}),
        ("/v1/completions", {"prompt": "four five", "max_tokens": 3, "stream": True}),
        ("/v1/chat/completions", CHAT | {"max_tokens": 3, "top_p": 0.8}),
        ("/v1/chat/completions", CHAT | {"max_tokens": 5, "stream": True}),
        ("/v1/chat/completions", CHAT | {"max_completion_tokens": 2, "stream": True,
                                         "stream_options": {"include_usage": True}}),
    ]  # fmt: skip
    before_server = len(_lines(upstream.capture, 0))
    before_proxy = len(_lines(proxied.capture, 0))
    ids = []
    for path, body in requests:
        status, answer = _post(proxied.url, path, body)
        assert status == 200, answer
        if isinstance(answer, list):  # streamed: usage only when the client asked for it
            usage_chunks = [e for e in answer if isinstance(e, dict) and e.get("usage")]
            asked = body.get("stream_options", {}).get("include_usage", False)
            assert len(usage_chunks) == (1 if asked else 0), answer
            assert answer[-1] == "[DONE]"
            ids.append(answer[0]["id"])
        else:
            ids.append(answer["id"])
    server = _lines(upstream.capture, before_server + len(requests))[before_server:]
    mine = _lines(proxied.capture, before_proxy + len(requests))[before_proxy:]
    assert len(mine) == len(requests), mine
    by_id = {r["request_id"]: r for r in mine}
    assert set(by_id) == set(ids)
    server_by_id = {r["request_id"]: r for r in server}
    for rid, (_, body) in zip(ids, requests, strict=True):
        record = by_id[rid]
        assert validate_capture_record(record) == []
        theirs = server_by_id[rid.split("-", 1)[1]]  # the server logs its id without the cmpl- prefix
        assert {f: record[f] for f in SAME_FIELDS} == {f: theirs[f] for f in SAME_FIELDS}
        assert {f: record[f] for f in SAMPLING} == {f: body.get(f) for f in SAMPLING}
        assert record["e2e_s"] >= theirs["e2e_s"] > 0
        assert record["queue_s"] is None  # a proxy cannot see the server's queue
        if record["stream"]:
            assert record["e2e_s"] >= record["ttft_s"] >= theirs["ttft_s"]
        assert "prompt_text" not in record


def test_stream_is_relayed_event_for_event(upstream, proxied):
    body = {"prompt": "the same prompt", "max_tokens": 6, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    _, direct = _post(upstream.url, "/v1/completions", body)
    before = len(_lines(proxied.capture, 0))
    _, relayed = _post(proxied.url, "/v1/completions", body)
    assert _lines(proxied.capture, before + 1)[-1]["request_id"] == relayed[0]["id"]

    def strip(events):
        return [e if isinstance(e, str) else {k: v for k, v in e.items() if k not in ("id", "created")}
                for e in events]  # fmt: skip

    assert strip(relayed) == strip(direct)


def test_errors_and_auth_are_passed_on(upstream, proxied):
    before = len(_lines(proxied.capture, 0))
    status, body = _post(proxied.url, "/v1/completions", {"prompt": "x", "max_tokens": 2}, headers={})
    assert status == 401, body
    status, body = _post(proxied.url, "/v1/completions", {"prompt": "x", "max_tokens": -1})
    direct_status, direct_body = _post(upstream.url, "/v1/completions", {"prompt": "x", "max_tokens": -1})
    assert (status, body) == (direct_status, direct_body) and status == 400
    response = httpx.get(proxied.url + "/v1/models", headers=AUTH, timeout=30)
    assert response.status_code == 200 and response.json()["data"][0]["id"] == "tiny"
    assert httpx.post(proxied.url + "/v1/completions", content=b"{not json", headers=AUTH).status_code == 400
    time.sleep(0.5)  # the writer would have written a line by now if it was given one
    assert len(_lines(proxied.capture, 0)) == before  # refused requests are not traffic to profile


def test_metrics_count_what_was_relayed(proxied):
    def scrape() -> dict[str, float]:
        out: dict[str, float] = {}
        for line in httpx.get(proxied.url + "/metrics", timeout=10).text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    before, lines = scrape(), len(_lines(proxied.capture, 0))
    for _ in range(2):
        assert _post(proxied.url, "/v1/chat/completions", CHAT | {"max_tokens": 2, "stream": True})[0] == 200
    assert _post(proxied.url, "/v1/chat/completions", CHAT | {"max_tokens": 2})[0] == 200
    after = scrape()
    assert len(_lines(proxied.capture, lines + 3)) == lines + 3
    label = '{endpoint="/v1/chat/completions"}'

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta(f"{TTFT_METRIC}_count{label}") == 2
    assert delta(f"{E2E_METRIC}_count{label}") == 3
    assert delta(f'{REQUESTS_METRIC}_total{{endpoint="/v1/chat/completions",status="200"}}') == 3


def test_client_disconnect_is_captured_as_abort(proxied):
    before = len(_lines(proxied.capture, 0))
    body = CHAT | {"max_tokens": 200, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", proxied.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=60) as r:
        for line in r.iter_lines():
            if '"content"' in line:
                break  # hang up after the first token
    record = _lines(proxied.capture, before + 1)[before:]
    assert [r["finish_reason"] for r in record] == ["abort"]
    assert record[0]["completion_tokens"] < 200


def test_unreachable_upstream_is_a_clear_502(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    with start_proxy(dead, "--capture", str(tmp_path / "c.jsonl")) as proxy:
        response = httpx.post(proxy.url + "/v1/completions", json={"prompt": "x"}, timeout=30)
    assert response.status_code == 502
    assert dead in response.json()["error"]["message"]


def test_sigterm_keeps_every_captured_line(upstream, tmp_path):
    capture = tmp_path / "c.jsonl"
    with start_proxy(upstream.url, "--capture", str(capture)) as proxy:
        for i in range(5):
            body = {"prompt": f"n{i}", "max_tokens": 2, "stream": i % 2 == 0}
            assert _post(proxy.url, "/v1/completions", body)[0] == 200
        # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM, not -SIGKILL.
        assert proxy.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    lines = _lines(capture, 5, timeout=0)
    assert len(lines) == 5 and all(validate_capture_record(r) == [] for r in lines)


def test_bad_listen_address_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tollgate", "proxy", "--upstream", "http://127.0.0.1:1", "--listen", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "HOST:PORT" in result.stderr


@pytest.mark.parametrize(
    ("capture", "fragment"),
    [("{tmp}/", "names a directory"), ("{tmp}/a-file/capture.jsonl", "cannot open for appending")],
)
def test_unusable_capture_path_is_a_clear_error(tmp_path, capture, fragment):
    """Same check as `tollgate serve --capture`: exit 2 with what and how to fix, before binding."""
    import subprocess
    import sys

    (tmp_path / "a-file").write_text("")  # a parent that is a file: unwritable even for root
    path = capture.format(tmp=tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "tollgate", "proxy", "--upstream", "http://127.0.0.1:1", "--capture", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"--capture {path}" in result.stderr and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

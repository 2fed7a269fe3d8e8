"""Start-up, SIGTERM drain and bad configuration of `tollgate serve` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.engine.helpers import micro_checkpoint
from tests.server.sse import read_events
from tests.support.servers import REPO_ROOT, ServerHandle, start_reference_server


@pytest.mark.timeout(120)
def test_sigterm_drains_then_exits_zero():
    # One request finishes inside the drain window; one cannot finish before the deadline and is aborted.
    # The deadline leaves a loaded CPU time for 2 tokens and stays far below 2000 tokens' worth.
    with start_reference_server("--drain-timeout", "5", "--served-model-name", "my-model") as server:
        results: dict[str, list] = {}
        started = threading.Barrier(3)

        def stream(name: str, max_tokens: int) -> None:
            req = {"prompt": "drain", "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
            with (
                httpx.Client(base_url=server.url, timeout=60) as c,
                c.stream("POST", "/v1/completions", json=req) as r,
            ):
                started.wait()
                results[name] = read_events(r)

        threads = [
            threading.Thread(target=stream, args=("short", 2)),
            threading.Thread(target=stream, args=("long", 2000)),
        ]
        for t in threads:
            t.start()
        started.wait()
        server.proc.send_signal(signal.SIGTERM)
        with httpx.Client(base_url=server.url, timeout=10) as c:
            deadline = time.monotonic() + 10  # the signal handler runs asynchronously to this client
            health = c.get("/health")
            while health.status_code == 200 and time.monotonic() < deadline:
                health = c.get("/health")
            refused = c.post("/v1/completions", json={"prompt": "late", "max_tokens": 1})
        for t in threads:
            t.join(60)
        assert server.proc.wait(60) == 0

    # While the model loaded, /health said so (when the poll caught that window), then 200.
    *loading, ready = server.startup_health
    assert ready[0] == 200 and all(a == (503, '{"status":"starting"}') for a in loading), (
        server.startup_health
    )
    assert health.status_code == 503 and health.json() == {"status": "draining"}
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
    for name, reason in (("short", "length"), ("long", "abort")):
        events = results[name]
        assert events[-1] == "[DONE]", name
        assert events[-2]["choices"][0]["finish_reason"] == reason, name
        assert {e["model"] for e in events[:-1]} == {"my-model"}


@pytest.mark.timeout(60)
def test_bad_engine_config_exits_2_with_a_precise_message():
    # The engine refuses it while loading (after uvicorn started): the server stops and says why.
    proc = subprocess.run(
        [sys.executable, "-m", "tollgate", "serve", "--port", "0", "--block-size", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 2
    assert "block_size=3" in proc.stderr and "--block-size" in proc.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--max-waiting", "-3"], ["--max-waiting", "must be >= 0"]),
        (["--model", "/no/such/checkpoint"], ["--model /no/such/checkpoint", "not a directory"]),
        (["--capture", "/no/such/dir/"], ["--capture /no/such/dir/", "names a directory"]),
    ],
)
def test_bad_flags_are_usage_errors(args, fragments):
    proc = subprocess.run(
        [sys.executable, "-m", "tollgate", "serve", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 2
    assert all(f in proc.stderr for f in fragments), proc.stderr


@pytest.mark.timeout(300)
def test_compile_flag_compiles_before_ready_then_serves(tmp_path):
    """`--compile`: /health says "starting" until the decode step is compiled (tens of seconds cold),
    then completions run through the compiled graph."""
    checkpoint = micro_checkpoint(tmp_path / "micro")
    with ServerHandle(("--model", str(checkpoint), "--compile"), None).start(timeout=240) as server:
        body = {"prompt": "hi", "max_tokens": 12, "ignore_eos": True, "temperature": 0}
        response = httpx.post(server.url + "/v1/completions", json=body, timeout=60)
        log = server.log()
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 12
    assert "decode step compiled in" in log
    *loading, ready = server.startup_health
    assert ready[0] == 200 and all(code == 503 for code, _ in loading)


@pytest.mark.timeout(300)
def test_compile_without_a_cxx_compiler_exits_2_and_says_so(tmp_path):
    checkpoint = micro_checkpoint(tmp_path / "micro")
    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-c++"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "ic"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tollgate", "serve", "--port", "0", "--model", str(checkpoint), "--compile"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--compile" in proc.stderr and "C++ compiler" in proc.stderr


@pytest.mark.timeout(120)
def test_checkpoint_without_chat_template_answers_chat_400_until_one_is_given(tmp_path):
    """As vLLM: no template -> every chat request is a 400 that says how to fix it; completions work;
    --chat-template FILE fixes it. The start-up log names the template in use."""
    checkpoint = micro_checkpoint(tmp_path / "micro")
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with ServerHandle(("--model", str(checkpoint)), None).start() as server:
        refused = httpx.post(server.url + "/v1/chat/completions", json=chat, timeout=30)
        completion = httpx.post(
            server.url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2}, timeout=30
        )
        log = server.log()
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert "no chat template" in error["message"] and "--chat-template" in error["message"]
    assert error["param"] == "messages"
    assert completion.status_code == 200 and "chat template: none" in log
    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    with ServerHandle(("--model", str(checkpoint), "--chat-template", str(template)), None).start() as server:
        answered = httpx.post(server.url + "/v1/chat/completions", json=chat, timeout=30)
        log = server.log()
    assert answered.status_code == 200, answered.text
    assert f"chat template: --chat-template {template}" in log

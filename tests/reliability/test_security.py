"""Security: API keys on every inference route, no secrets or raw prompts where they do not belong."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.reliability.helpers import services, tollgate, wait_until
from tollgate.contracts import validate_capture_record
from tollgate.supervise import free_port

SAMPLE_BODIES = {
    "/v1/completions": {"model": "tiny", "prompt": "hello", "max_tokens": 2},
    "/v1/chat/completions": {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
    },
}


def _inference_routes(url: str) -> list[tuple[str, str]]:
    """(method, path) of every /v1 route in the served OpenAPI document."""
    doc = httpx.get(f"{url}/openapi.json", timeout=10).json()
    return [(m.upper(), p) for p, ops in doc["paths"].items() if p.startswith("/v1/") for m in ops]


def auth(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


@pytest.mark.timeout(120)
def test_api_key_required_on_every_inference_route(shared_server, figures):
    """Injects requests with no key, a wrong key, the key with its last byte changed, a non-Bearer
    scheme and a bare key on every /v1 route of the served OpenAPI document; must hold: all answered
    401 in OpenAI's error shape, the right key is accepted, /health and /metrics stay open, and the
    key never appears in the server's log."""
    server, key = shared_server, shared_server.api_key
    routes = _inference_routes(server.url)
    assert {("POST", "/v1/completions"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")} <= set(
        routes
    )
    bad_headers = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {key[:-1]}{'A' if key[-1] != 'A' else 'B'}"},
        {"Authorization": f"Basic {key}"},
        {"Authorization": key},
    ]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for method, path in routes:
            body = SAMPLE_BODIES.get(path)
            for headers in bad_headers:
                r = http.request(method, path, json=body, headers=headers)
                figures.requests += 1
                figures.faults += 1
                assert r.status_code == 401, (method, path, headers, r.text)
                assert set(r.json()["error"]) >= {"message", "type", "code"}
            r = http.request(method, path, json=body, headers=auth(server))
            figures.requests += 1
            assert r.status_code == 200, (method, path, r.text)
        assert http.get("/health").status_code == 200
        assert http.get("/metrics").status_code == 200
        figures.requests += 2
    assert key not in server.log()


@pytest.mark.timeout(120)
def test_capture_log_holds_no_raw_prompt_text_by_default(shared_server, figures):
    """Injects chat prompts carrying a unique marker word into a server started with --capture (no
    --capture-text); must hold: a valid capture line is written for each request, with the prompt
    profile sketch, but neither the marker nor a prompt_text field appears anywhere in the log."""
    marker = f"zebracanary{uuid.uuid4().hex}"
    body = {"model": "tiny", "messages": [{"role": "user", "content": f"say {marker} now"}], "max_tokens": 2}
    before = _capture_lines(shared_server.capture)
    for _ in range(3):
        r = httpx.post(
            f"{shared_server.url}/v1/chat/completions", json=body, headers=auth(shared_server), timeout=60
        )
        assert r.status_code == 200
        figures.requests += 1
    lines = wait_until(
        lambda: (new := _capture_lines(shared_server.capture)[len(before) :]) and len(new) >= 3 and new,
        30,
        "three new capture lines",
    )
    assert all(validate_capture_record(line) == [] for line in lines)
    assert all("prompt_text" not in line and len(line["prompt_profile"]["sketch"]) == 64 for line in lines)
    assert marker not in shared_server.capture.read_text()
    assert marker not in shared_server.log()


def _capture_lines(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def _listening_addresses(pid: int) -> set[str]:
    """IP addresses the process tree rooted at `pid` listens on (TCP)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    addresses = set()
    for proc in procs:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                addresses.add(conn.laddr.ip)
    return addresses


@pytest.mark.timeout(120)
def test_services_bind_loopback_by_default(shared_server, tmp_path, figures):
    """Injects nothing: starts the server (shared), the dashboard, the monitor's GPU/host exporter and
    the monitor itself without --host; must hold: every socket they listen on is bound to 127.0.0.1
    (nothing on 0.0.0.0 or a public address)."""
    with services(tmp_path) as svc:
        port, gpu_port = free_port(), free_port()
        dash = svc.sup.start(
            "dashboard", [*tollgate("dashboard"), "--port", str(port), "--data", str(tmp_path)]
        )
        gpu = svc.sup.start("gpu-exporter", tollgate("monitor", "gpu", "--port", str(gpu_port)))
        monitor = svc.sup.start(
            "monitor",
            tollgate(
                "monitor",
                "--target",
                shared_server.url,
                "--store",
                str(tmp_path / "m.db"),
                "--interval",
                "1s",
            ),
        )
        svc.sup.wait_http(dash, f"http://127.0.0.1:{port}/_stcore/health", timeout=90)
        svc.sup.wait_http(gpu, f"http://127.0.0.1:{gpu_port}/metrics", timeout=60)
        wait_until(lambda: (tmp_path / "m.db").exists(), 30, "the monitor's first scrape")
        listeners = (("server", shared_server.proc.pid), ("dashboard", dash.pid), ("gpu exporter", gpu.pid))
        for name, pid in listeners:
            addresses = wait_until(lambda p=pid: _listening_addresses(p), 10, f"{name} listening")
            assert addresses == {"127.0.0.1"}, (name, addresses)
        assert _listening_addresses(monitor.pid) <= {"127.0.0.1"}
        figures.requests += 2


@pytest.mark.timeout(120)
def test_api_key_not_on_any_command_line(shared_server, tmp_path, figures):
    """Injects the API key through OPENAI_API_KEY into `tollgate load` and watches every process's
    command line while the run is under way; must hold: the key appears on no command line (ps and
    /proc are readable by every local user)."""
    key = shared_server.api_key
    argv = [*tollgate("load", "--url", shared_server.url, "--users", "1", "--requests", "2")]
    argv += ["--output-tokens", "1", "--out", str(tmp_path / "runs")]
    proc = subprocess.Popen(
        argv, env={**os.environ, "OPENAI_API_KEY": key}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    seen: list[str] = []
    try:
        while proc.poll() is None:
            for other in psutil.process_iter(["cmdline"]):
                if key in " ".join(other.info["cmdline"] or []):
                    seen.append(" ".join(other.info["cmdline"][:4]))
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    figures.requests += 2
    assert proc.returncode == 0
    assert seen == [], f"the API key is on the command line of: {sorted(set(seen))}"

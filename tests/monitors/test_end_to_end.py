"""The monitor as a process, end to end on 127.0.0.1: a load-induced latency SLO breach sends exactly one
Slack message after `for` and one resolved message after recovery; a killed target fires TargetDown."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import httpx
import pytest

from tests.support.processes import ROOT, free_port, receiver, stop, wait_http, wait_until

RULES = """rules:
  - name: TTFTP95OverSLO
    kind: quantile
    metric: vllm:time_to_first_token_seconds
    q: 0.95
    window: 1s
    op: ">"
    threshold: 0.2
    for: 1s
    severity: warning
    summary: "TTFT p95 {{ value }}s on {{ target }} (SLO {{ threshold }}s)"
  - name: TargetDown
    kind: up
    op: "<"
    threshold: 1
    for: 500ms
    severity: critical
    summary: "{{ target }} is down"
"""


class Load:
    """`workers` threads sending completions back to back until stopped."""

    def __init__(self, url: str, workers: int, body: dict | None = None) -> None:
        self.stop_event = threading.Event()
        self.body = body or {"prompt": "hi", "max_tokens": 4}
        self.threads = [threading.Thread(target=self._run, args=(url,), daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def _run(self, url: str) -> None:
        with httpx.Client(timeout=120) as client:
            while not self.stop_event.is_set():
                try:
                    client.post(url + "/v1/completions", json=self.body)
                except httpx.HTTPError:
                    self.stop_event.wait(0.05)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=120)


def _titles(rx) -> list[str]:
    return [m["payload"]["blocks"][0]["text"]["text"] for m in rx.messages()]


@pytest.mark.timeout(90)
def test_slo_breach_fires_once_resolves_once_and_target_down(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.monitors.loadserver", "--port", str(port)], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "rules.yaml").write_text(RULES)
    monitor = None
    try:
        wait_http(url + "/health", proc=server)
        with receiver(tmp_path / "slack.jsonl") as rx:
            hook = rx.url + "/services/T000/B000/SECRETTOKEN"
            light = Load(url, 1)
            cmd = [sys.executable, "-m", "tollgate", "monitor", "--target", url, "--rules", str(tmp_path / "rules.yaml"),
                   "--interval", "250ms", "--window", "1s", "--store", str(tmp_path / "m.db")]  # fmt: skip
            env = {"TOLLGATE_SLACK_WEBHOOK": hook, "PATH": "/usr/bin:/bin"}
            monitor = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            wait_until(lambda: _rows(tmp_path, "SELECT COUNT(*) FROM series WHERE name='ttft_p95_s'") > 4, 20,
                       what="the monitor storing TTFT p95")  # fmt: skip
            heavy = Load(url, 16)  # 16 in flight: TTFT ~0.3 s against a 0.2 s SLO
            wait_until(lambda: rx.messages(), 30, what="the firing message")
            heavy.stop()
            wait_until(lambda: len(rx.messages()) >= 2, 30, what="the resolved message")
            light.stop()
            server.terminate()
            server.wait(10)
            wait_until(lambda: len(rx.messages()) >= 3, 30, what="the TargetDown message")
            titles = _titles(rx)
            monitor.terminate()
            output = monitor.communicate(timeout=20)[0]
            assert monitor.returncode == 0, output  # SIGTERM is a clean stop
    finally:
        stop(server)
        if monitor is not None:
            stop(monitor)
    assert titles == ["[FIRING] TTFTP95OverSLO", "[RESOLVED] TTFTP95OverSLO", "[FIRING] TargetDown"], output
    states = _rows(tmp_path, "SELECT group_concat(state) FROM alerts WHERE rule='TTFTP95OverSLO' ORDER BY id")
    assert states == "pending,firing,resolved"
    fired, since = (
        sqlite3.connect(tmp_path / "m.db")
        .execute("SELECT ts, active_since FROM alerts WHERE rule='TTFTP95OverSLO' AND state='firing'")
        .fetchone()
    )
    assert fired - since >= 1.0  # `for: 1s` elapsed between pending and firing
    assert _rows(tmp_path, "SELECT COUNT(*) FROM outbox WHERE status='delivered'") == 3
    assert "SECRETTOKEN" not in output


def _rows(tmp_path, sql: str):
    try:
        return sqlite3.connect(tmp_path / "m.db").execute(sql).fetchone()[0] or 0
    except sqlite3.OperationalError:  # not created yet
        return 0


REFERENCE_RULES = """rules:
  - name: TTFTP95OverSLO
    kind: quantile
    metric: vllm:time_to_first_token_seconds
    q: 0.95
    window: 10s
    op: ">"
    threshold: 4
    for: 2s
    summary: "TTFT p95 {{ value }}s on {{ target }}"
"""


@pytest.mark.soak
@pytest.mark.timeout(300)
def test_reference_server_load_breach_fires_once_and_resolves(tmp_path, reference_server):
    """The same SLO story against the real reference server (slow on a shared CPU box, hence soak)."""
    (tmp_path / "rules.yaml").write_text(REFERENCE_RULES)
    body = {"model": "tiny", "prompt": "hello", "max_tokens": 1}
    with receiver(tmp_path / "slack.jsonl") as rx:
        cmd = [
            sys.executable,
            "-m",
            "tollgate",
            "monitor",
            "--target",
            reference_server.url,
            "--rules",
            str(tmp_path / "rules.yaml"),
            "--interval",
            "500ms",
            "--window",
            "10s",
            "--store",
            str(tmp_path / "m.db"),
        ]
        env = {"TOLLGATE_SLACK_WEBHOOK": rx.url + "/hook", "PATH": "/usr/bin:/bin"}
        monitor = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        light = Load(reference_server.url, 1, body)
        try:
            heavy = Load(reference_server.url, 24, body)
            wait_until(lambda: rx.messages(), 120, what="the firing message")
            heavy.stop()
            wait_until(lambda: len(rx.messages()) >= 2, 120, what="the resolved message")
            titles = _titles(rx)
        finally:
            light.stop()
            stop(monitor)
    assert titles == ["[FIRING] TTFTP95OverSLO", "[RESOLVED] TTFTP95OverSLO"]

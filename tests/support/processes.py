"""Real processes on 127.0.0.1 for tests and benchmarks: the webhook receiver, ports, waits and stopping."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Receiver:
    """`python -m monitors.webhook_receiver` as a subprocess."""

    def __init__(self, record: Path, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.record = record
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "monitors.webhook_receiver",
            "--port",
            str(self.port),
            "--record",
            str(record),
        ]
        self.proc = subprocess.Popen(
            [*cmd, *extra], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_http(self.url + "/health", proc=self.proc)

    def messages(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        stop(self.proc)


@contextmanager
def receiver(record: Path, *extra: str, port: int | None = None):
    r = Receiver(record, port, *extra)
    try:
        yield r
    finally:
        r.stop()

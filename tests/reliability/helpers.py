"""Helpers shared by the reliability tests: figures, real services on 127.0.0.1, metrics, polling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tollgate.supervise import Child, Supervisor, free_port

T = TypeVar("T")


@dataclass
class Figures:
    """What one reliability test did; summed into the table of docs/benchmarks.md."""

    requests: int = 0
    faults: int = 0
    alerts_lost: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "faults": self.faults,
            "alerts_lost": self.alerts_lost,
            "notes": "; ".join(self.notes),
        }


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `check` until it returns a truthy value; fail the test with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f}s (last: {last!r})")


def tollgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "tollgate", *args]


def run_cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `tollgate ARGS` to completion in its own process group and return its result (text output).

    On timeout the whole group (Locust workers included) is killed and TimeoutExpired raised."""
    proc = subprocess.Popen(
        tollgate(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Descendants first: `tollgate load` starts Locust in a session of its own, out of our group.
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def metric_values(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Samples of a /metrics page, parsed by prometheus-client: name -> value summed over labels."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=5).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    return values


@dataclass
class Services:
    """A supervisor plus conveniences to start Tollgate's own processes for a test."""

    sup: Supervisor
    tmp: Path

    def server(
        self, *args: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> tuple[Child, str]:
        port = port or free_port()
        child = self.sup.start(f"server-{port}", tollgate("serve", "--port", str(port), *args), env=env)
        url = f"http://127.0.0.1:{port}"
        self.sup.wait_http(child, f"{url}/health", timeout=120)
        return child, url

    def receiver(self, *args: str, port: int | None = None) -> tuple[Child, str, Path]:
        port = port or free_port()
        record = self.tmp / f"slack-{port}.jsonl"
        argv = [
            sys.executable,
            "-m",
            "monitors.webhook_receiver",
            "--port",
            str(port),
            "--record",
            str(record),
        ]
        child = self.sup.start(f"receiver-{port}", [*argv, *args])
        self.sup.wait_http(child, f"http://127.0.0.1:{port}/health", timeout=30)
        return child, f"http://127.0.0.1:{port}", record


@contextmanager
def services(tmp: Path) -> Iterator[Services]:
    with Supervisor(tmp / "logs", stop_timeout=10, handle_signals=False) as sup:
        yield Services(sup, tmp)

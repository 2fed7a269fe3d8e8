"""Run `tollgate proxy` in a subprocess on a free loopback port (tests, benchmarks, the demo).

with start_proxy("http://127.0.0.1:8000", "--capture", "capture.jsonl") as proxy:
    httpx.post(proxy.url + "/v1/completions", json={...})
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProxyHandle:
    def __init__(self, proc: subprocess.Popen, url: str, log_path: Path) -> None:
        self.proc, self.url, self.log_path = proc, url, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the proxy (SIGTERM drains the capture queue), SIGKILL after `timeout`; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@contextlib.contextmanager
def start_proxy(upstream: str, *args: str, timeout: float = START_TIMEOUT_S) -> Iterator[ProxyHandle]:
    """`tollgate proxy --upstream UPSTREAM --listen 127.0.0.1:<free> ARGS`, ready once /metrics answers."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="tollgate-proxy-", suffix=".log", delete=False)  # noqa: SIM115
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "tollgate", "proxy", "--upstream", upstream, "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*cmd, *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle = ProxyHandle(proc, f"http://127.0.0.1:{port}", Path(log.name))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tollgate proxy did not start; its log:\n{handle.log()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(handle.url + "/metrics", timeout=2.0).status_code == 200:
                    break
            time.sleep(0.1)
        yield handle
    finally:
        handle.stop()
        log.close()

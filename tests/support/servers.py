"""Start a real reference server (`python -m tollgate serve`) on a free loopback port for tests.

    with start_reference_server("--max-waiting", "2") as server:
        httpx.get(server.url + "/health")

The server runs the tiny preset on the CPU with small engine limits unless the arguments say
otherwise; the handle waits until /health answers 200 and stops the process (SIGTERM, then
SIGKILL) on exit. Its combined stdout/stderr is kept in `server.log_path` for failure messages.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
# Small limits keep start-up fast and memory low on a shared test machine.
DEFAULT_ARGS = ("--model", "tiny", "--device", "cpu", "--max-num-seqs", "8", "--num-kv-blocks", "256")
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flag_names(args: tuple[str, ...]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


class ServerHandle:
    def __init__(self, args: tuple[str, ...], env: dict[str, str] | None) -> None:
        given = _flag_names(args)
        defaults: list[str] = []
        it = iter(DEFAULT_ARGS)
        for flag, value in zip(it, it, strict=True):
            if flag not in given:
                defaults += [flag, value]
        self.args = [*defaults, *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), self.env.get("PYTHONPATH")]))
        self.proc: subprocess.Popen | None = None
        self.startup_health: list[tuple[int, str]] = []  # (status, body) of /health answers before ready
        self.port = 0
        self.url = ""
        self.api_key = self.env.get("TOLLGATE_API_KEY")
        if "--api-key" in self.args:
            self.api_key = self.args[self.args.index("--api-key") + 1]
        self._log = tempfile.NamedTemporaryFile(prefix="tollgate-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(self._log.name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _spawn(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "tollgate",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self, timeout: float = START_TIMEOUT_S) -> ServerHandle:
        for _attempt in range(3):  # another process may grab the free port before the server binds it
            self._spawn()
            if self._wait_healthy(timeout):
                return self
            if "address already in use" not in self.log().lower():
                break
        log = self.log()
        self.stop()
        raise RuntimeError(
            f"reference server did not become healthy; its log ({self.log_path}):\n{log[-4000:]}"
        )

    def _wait_healthy(self, timeout: float) -> bool:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                response = httpx.get(self.url + "/health", headers=headers, timeout=2.0)
                self.startup_health.append((response.status_code, response.text))
                if response.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_reference_server(*args: str, env: dict[str, str] | None = None) -> ServerHandle:
    """Start `tollgate serve` with `args` on a free port; use as a context manager."""
    return ServerHandle(tuple(args), env).start()

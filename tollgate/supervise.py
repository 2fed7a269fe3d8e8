"""Child-process supervision for `tollgate demo` (and tests that start several services).

Every child runs in its own process group (its own session), so stopping it also stops what it
started (uvicorn workers, Locust worker processes, Streamlit's script runner). Stopping is
SIGTERM to the group, a bounded wait, then SIGKILL to the group. On Linux each child also gets
PR_SET_PDEATHSIG, so it receives SIGTERM even if the supervisor itself is killed with SIGKILL.

A Supervisor stops its children on leaving its `with` block, at interpreter exit (atexit), and on
SIGINT/SIGTERM/SIGHUP, which it turns into `Interrupted` so the caller's code unwinds normally.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import psutil

_PR_SET_PDEATHSIG = 1


class Interrupted(Exception):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) arrived; carries the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ChildFailed(RuntimeError):
    """A child exited or never became ready; the message names it and points at its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """preexec hook: ask Linux to SIGTERM this child when its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' when missing), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen
    log: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


def _signal_group(child: Child, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.proc.pid, sig)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop_strays(procs: list[psutil.Process], timeout: float) -> None:
    """Terminate, then kill, processes that left the child's group (e.g. started in a new session)."""
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, still = psutil.wait_procs(alive, timeout=timeout)
    for proc in still:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def stop_child(child: Child, timeout: float = 10.0) -> int | None:
    """SIGTERM the child's group, wait up to `timeout`, then SIGKILL the group; then stop any
    descendant that had left the group (its own session). Returns the child's exit code."""
    family = _descendants(child.proc.pid)  # before anything exits and gets reparented
    if child.alive():
        _signal_group(child, signal.SIGTERM)
        try:
            child.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.proc.wait(timeout=5)
    if not _wait_group(child, 2.0):
        _signal_group(child, signal.SIGKILL)  # grandchildren that ignored SIGTERM or outlived their parent
        _wait_group(child, 5.0)
    with contextlib.suppress(psutil.Error):
        _stop_strays(family, timeout=min(timeout, 5.0))
    return child.proc.returncode


def _wait_group(child: Child, timeout: float) -> bool:
    """Wait until no process of the child's group is left running; True if none is."""
    deadline = time.monotonic() + timeout
    while _group_running(child.proc.pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _group_running(pgid: int) -> bool:
    """True while a non-zombie process is in group `pgid` (zombies wait for their reaper, harmlessly)."""
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return False


class Supervisor:
    """Starts children, waits for them to be ready, and always stops them all."""

    STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(
        self,
        log_dir: Path,
        env: dict[str, str] | None = None,
        stop_timeout: float = 10.0,
        handle_signals: bool = True,
        drop_env: tuple[str, ...] = (),
    ) -> None:
        self.log_dir = Path(log_dir)
        self.handle_signals = handle_signals
        self.env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop_env}
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self._old_handlers: dict[int, object] = {}
        self._stopping = False

    # lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Supervisor:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop_all)
        for sig in self.STOP_SIGNALS if self.handle_signals else ():
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        atexit.unregister(self.stop_all)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:  # a second Ctrl-C while stopping: stop harder, but still clean up
            for child in self.children:
                _signal_group(child, signal.SIGKILL)
            return
        raise Interrupted(signum)

    def stop_all(self) -> None:
        """Stop every child, newest first (clients before the services they talk to)."""
        self._stopping = True
        try:
            for child in reversed(self.children):
                stop_child(child, self.stop_timeout)
        finally:
            self._stopping = False

    # starting ------------------------------------------------------------------------------
    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        """Start `argv` in its own process group, stdout and stderr into <log_dir>/<name>.log."""
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.env, **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, list(argv), proc, log)
        self.children.append(child)
        return child

    def run(
        self, name: str, argv: Sequence[str], timeout: float, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """Run a command to completion as a supervised child; returns (exit code, its stdout).

        stderr goes to <log_dir>/<name>.log; stdout is kept too in <log_dir>/<name>.out.
        A command past `timeout` is stopped and reported as exit code 124 (like timeout(1)).
        """
        out_path = self.log_dir / f"{name}.out"
        log = self.log_dir / f"{name}.log"
        with open(out_path, "wb") as out, open(log, "ab") as err:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**self.env, **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, list(argv), proc, log)
        self.children.append(child)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_child(child, self.stop_timeout)
            rc = 124
        else:
            stop_child(child, 1.0)  # reap stray grandchildren
        self.children.remove(child)
        return rc, out_path.read_text(errors="replace")

    # readiness -----------------------------------------------------------------------------
    def wait_http(self, child: Child, url: str, timeout: float = 60.0) -> float:
        """Poll `url` until it answers 2xx; returns seconds waited. Fails fast if the child exits."""
        start = time.monotonic()
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not child.alive():
                    raise ChildFailed(
                        f"{child.name} exited with status {child.proc.returncode} before it was ready "
                        f"(log {child.log}):\n{tail(child.log)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).is_success:
                        return time.monotonic() - start
                if time.monotonic() - start > timeout:
                    raise ChildFailed(
                        f"{child.name} did not answer {url} within {timeout:.0f} s "
                        f"(log {child.log}):\n{tail(child.log)}"
                    )
                time.sleep(0.2)

    def wait_port(self, child: Child, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> float:
        """Wait until something accepts TCP connections on host:port; returns seconds waited."""
        start = time.monotonic()
        while True:
            if not child.alive():
                raise ChildFailed(
                    f"{child.name} exited with status {child.proc.returncode} before it was ready "
                    f"(log {child.log}):\n{tail(child.log)}"
                )
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ChildFailed(f"{child.name} did not listen on {host}:{port} within {timeout:.0f} s")
            time.sleep(0.1)

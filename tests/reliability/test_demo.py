"""`tollgate demo` as a process tree: Ctrl-C in the middle leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest

from tests.reliability.helpers import wait_until


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _cmdline(proc: psutil.Process) -> str:
    """The process's command line, '' when it has exited meanwhile (e.g. the drift profile step)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _alive(procs: list[psutil.Process]) -> list[str]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {_cmdline(proc)[:120]}")
        except psutil.Error:
            continue
    return alive


@pytest.mark.timeout(180)
def test_ctrl_c_during_the_demo_leaves_no_orphan(tmp_path, figures):
    """Injects SIGINT (Ctrl-C) into `tollgate demo` once its server, Slack receiver, drift watcher and
    monitor are running and the first Locust phase is under way; must hold: the demo exits 130
    promptly, says it is stopping, and not one process it started is left running (Locust included,
    though `tollgate load` starts it in a session of its own)."""
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tollgate",
            "demo",
            "--model",
            "tiny",
            "--no-dashboard",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started: list[psutil.Process] = []
    try:

        def services_up() -> bool:
            started[:] = _descendants(demo.pid)
            names = " ".join(_cmdline(p) for p in started)
            wanted = ("tollgate serve", "webhook_receiver", "drift watch", "tollgate monitor", "locust")
            return all(word in names for word in wanted)

        wait_until(services_up, 120, "the demo's services to start")
        figures.faults += 1
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, out[-3000:]
    assert "stopping every process" in out
    figures.notes.append(f"{len(started)} child processes stopped")
    wait_until(lambda: not _alive(started), 15, "every demo child to exit")
    assert _alive(started) == []

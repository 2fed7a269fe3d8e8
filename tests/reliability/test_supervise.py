"""The process supervision `tollgate demo` relies on: no orphans, whatever happens to the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.reliability.helpers import wait_until
from tollgate.supervise import Supervisor

# A child that starts a grandchild which ignores SIGTERM, then prints both pids.
STUBBORN_FAMILY = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    grandchild.stdout.readline()
    print(grandchild.pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _grandchild_pid(log) -> int:
    return int(wait_until(lambda: log.read_text().strip(), 30, "the grandchild's pid"))


@pytest.mark.timeout(60)
def test_stop_all_kills_stubborn_grandchildren(tmp_path, figures):
    """Injects a child whose grandchild ignores SIGTERM; must hold: stopping the supervisor leaves
    no process of that family alive (SIGTERM to the group, bounded wait, then SIGKILL)."""
    with Supervisor(tmp_path, stop_timeout=2, handle_signals=False) as sup:
        child = sup.start("family", [sys.executable, "-c", STUBBORN_FAMILY])
        grandchild = _grandchild_pid(child.log)
        figures.faults += 1
        assert not _gone(grandchild)
    assert _gone(child.pid) and _gone(grandchild)


@pytest.mark.timeout(60)
def test_children_die_with_a_killed_supervisor(tmp_path, figures):
    """Injects SIGKILL into a process that supervises a child (no chance to clean up); must hold:
    the child still terminates (PR_SET_PDEATHSIG), so a killed `tollgate demo` leaves no server behind."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from tollgate.supervise import Supervisor
        sup = Supervisor(Path({str(tmp_path)!r}) / "logs").__enter__()
        child = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    try:
        assert not _gone(child_pid)
        parent.send_signal(signal.SIGKILL)
        figures.faults += 1
        parent.wait(timeout=10)
        wait_until(lambda: _gone(child_pid), 10, "the orphaned child to terminate")
    finally:
        if parent.poll() is None:
            parent.kill()
        if not _gone(child_pid):
            os.kill(child_pid, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_sigint_unwinds_and_stops_children(tmp_path, figures):
    """Injects SIGINT (Ctrl-C) into a supervising process; must hold: it exits promptly through its
    cleanup path (exit code 130 here) and its child and grandchild are gone."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from tollgate.supervise import Interrupted, Supervisor
        try:
            with Supervisor(Path({str(tmp_path)!r}) / "logs", stop_timeout=2) as sup:
                child = sup.start("family", [sys.executable, "-c", {STUBBORN_FAMILY!r}])
                while not child.log.read_text().strip():
                    time.sleep(0.05)
                print(child.pid, child.log.read_text().strip(), flush=True)
                time.sleep(600)
        except Interrupted:
            sys.exit(130)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = [int(x) for x in parent.stdout.readline().split()]
        child_pid, grandchild_pid = pids
        parent.send_signal(signal.SIGINT)
        figures.faults += 1
        assert parent.wait(timeout=30) == 130
        assert _gone(child_pid) and _gone(grandchild_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)

"""Locust as a child process of `tollgate load`: its command line, and its life (the run's time
limit, Ctrl-C and SIGTERM passed on once, killed with its workers when it overruns, SIGINT when we die)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from loadgen import API_KEY_ENV
from loadgen.config import RunConfig

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GRACE_S = 90.0


def locust_command(config: RunConfig, args: argparse.Namespace) -> list[str]:
    users = config.users or config.max_concurrency
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--only-summary"]
    if args.web:  # the UI shows the run live; the coordinator closes it when the run folder is written
        cmd += ["--autostart", "--web-host", "127.0.0.1", "--web-port", str(args.web_port)]
    else:
        cmd += ["--headless"]
    cmd += [
        "--host",
        config.url,
        "--loglevel",
        args.loglevel,
        "--csv",
        str(Path(config.run_dir) / "locust"),
    ]
    # the API key never goes on a command line (visible in `ps` to every user): run_locust passes it in
    # the environment, and load_config puts it back
    cmd += ["--tollgate-config", json.dumps({k: v for k, v in config.to_dict().items() if k != "api_key"})]
    if not config.shape:
        cmd += ["-u", str(users), "-r", str(args.spawn_rate or max(users, 1))]
    if args.master:
        cmd += [
            "--master",
            "--expect-workers",
            str(args.expect_workers or 1),
            "--master-bind-port",
            str(args.master_port),
        ]
    elif args.processes > 1:
        # the forked workers reach their master on loopback; Locust's default port (5557, all interfaces)
        # would make two `--processes` runs on one machine collide, so each run takes a free port
        port = _free_loopback_port()
        cmd += ["--processes", str(args.processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", str(port), "--master-port", str(port)]
    return cmd


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_worker(args: argparse.Namespace) -> int:
    """`tollgate load --worker`: Locust workers of a master on another machine."""
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--loglevel", args.loglevel]
    cmd += ["--master-host", args.master_host, "--master-port", str(args.master_port)]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    return subprocess.call(cmd)


def run_locust(config: RunConfig, args: argparse.Namespace) -> int | None:
    """Run Locust to its end; its exit code, or None when it had to be killed."""
    env = dict(os.environ)
    if config.api_key:
        env[API_KEY_ENV] = config.api_key
    if config.shape:
        env["TOLLGATE_SHAPE"] = json.dumps(config.shape)
    env["PYTHONPATH"] = os.pathsep.join([str(LOCUSTFILE.parent.parent), env.get("PYTHONPATH", "")])
    # Locust runs in its own session so a terminal's Ctrl-C reaches it once, through us (below). If we are
    # killed outright, the kernel sends it SIGINT (parent-death signal), so it still stops and writes an
    # `interrupted` run instead of loading the server as an orphan.
    proc = subprocess.Popen(
        locust_command(config, args),
        env=env,
        stdout=sys.stderr,
        start_new_session=True,
        preexec_fn=_interrupt_on_parent_death if sys.platform.startswith("linux") else None,
    )
    limit = None if not config.duration_s else config.duration_s + GRACE_S + (60 if args.master else 0)
    main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM stops a run like Ctrl-C does (handlers can only be set from the main thread)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main_thread else None
    try:
        try:
            return proc.wait(timeout=limit)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)  # one SIGINT: Locust stops and writes an `interrupted` run
        except subprocess.TimeoutExpired:
            print("tollgate load: Locust overran the duration; interrupting it", file=sys.stderr)
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # Locust and the workers it forked
            proc.wait()
            return None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_on_parent_death() -> None:
    """In the forked child: ask Linux to send SIGINT when the parent dies (prctl PR_SET_PDEATHSIG).

    SIGINT goes back to its default first: a `tollgate load` started in the background by a shell
    (`cmd &`, CI scripts) inherits SIGINT ignored, which exec keeps and Python then leaves ignored, so
    Locust would outlive its parent as an orphan."""
    import ctypes

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT, 0, 0, 0)

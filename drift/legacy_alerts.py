"""The deprecated alert flags of `drift watch` (`--slack-webhook`, `--webhook`, `--store`, and the
webhook variables in the watch's environment), kept working through the one alerting path.

Drift alerts come from the monitor: its `DriftDetected` rule (monitors/default_rules.yaml) fires on the
watch's `tollgate_drift_detected` gauge, and the monitor's notifier delivers it with its outbox and
retries. When the old flags are given, the watch starts that monitor itself, as a child
`tollgate monitor --target <the watch's /metrics>` with the shipped rules, the given store, and the
webhooks in its environment (not visible in `ps`), and says on stderr how to run it instead. Drift imports
nothing from monitors: the child reads the watch over the metrics contract, like any monitor would.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tollgate.contracts.alert_receivers import SLACK_ENV, WEBHOOK_ENV

MAX_SCRAPE_S = 5.0  # the child's scrape interval: the watch's --interval, at most this
DRAIN_S = 15.0  # how long the watch waits at exit for the child to deliver the last alert


def wanted(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> bool:
    """Whether the watch was asked to alert by itself (the old way)."""
    return bool(args.slack_webhook or args.webhook or env.get(SLACK_ENV) or env.get(WEBHOOK_ENV))


def scrape_interval(args: argparse.Namespace) -> float:
    return max(0.5, min(args.interval, MAX_SCRAPE_S))


def monitor_argv(args: argparse.Namespace, metrics_url: str) -> list[str]:
    """The `tollgate monitor` that alerts on this watch's gauges, as a user would run it."""
    return [
        *("tollgate", "monitor", "--target", metrics_url),
        *("--store", str(args.store), "--interval", f"{scrape_interval(args):g}s"),
    ]


def deprecation(metrics_url: str, argv: list[str]) -> str:
    return (
        "warning: drift watch --slack-webhook/--webhook/--store (and the webhook variables in its environment) "
        f"are deprecated. Alerts on drift come from the monitor's DriftDetected rule on {metrics_url}; this "
        f"watch now starts that monitor for you: `{' '.join(argv)}` (webhooks passed as {SLACK_ENV} / "
        f"{WEBHOOK_ENV}). Run it yourself, or add this --target to the monitor you already run, and drop "
        "these flags."
    )


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec hook by which Linux sends the child SIGTERM when the watch dies, even by SIGKILL
    (PR_SET_PDEATHSIG). prctl is looked up here, in the parent: the forked child, which may inherit locks
    held by the watch's threads, only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM, 0, 0, 0)


class AlertingMonitor:
    """A child `tollgate monitor` scraping the watch; stopped with the watch."""

    def __init__(self, args: argparse.Namespace, metrics_url: str) -> None:
        argv = monitor_argv(args, metrics_url)
        print(deprecation(metrics_url, argv), file=sys.stderr, flush=True)
        env = dict(os.environ)
        env.update({k: v for k, v in ((SLACK_ENV, args.slack_webhook), (WEBHOOK_ENV, args.webhook)) if v})
        self.scrape_s, self.store = scrape_interval(args), Path(args.store).resolve()
        # its own session: Ctrl-C stops the watch, which then lets the monitor deliver before stopping it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *argv],
            env=env,
            stdout=sys.stderr,
            start_new_session=True,
            preexec_fn=_parent_death_hook(),
        )

    def stop(self) -> None:
        """Waits (at most DRAIN_S) until the monitor has scraped the last gauges and delivered what they
        fired, as the watch's own notifier used to drain at exit; then stops it. What it could not deliver
        stays in its outbox for the next monitor on that store."""
        ended, deadline = time.time(), time.monotonic() + DRAIN_S
        while self.proc.poll() is None and time.monotonic() < deadline and not self._drained(ended):
            time.sleep(0.2)
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def _drained(self, ended: float) -> bool:
        """A scrape begun a full interval after `ended` (so the tick that read the last gauges has finished
        its rules) and nothing pending in the outbox; read per the monitor store contract."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=1)) as db:
                scraped = db.execute("SELECT max(last_scrape) FROM targets").fetchone()[0]
                pending = db.execute(
                    "SELECT count(*) FROM outbox WHERE status IN ('pending', 'retrying')"
                ).fetchone()[0]
        except sqlite3.Error:  # not created yet
            return False
        return scraped is not None and scraped >= ended + self.scrape_s and pending == 0

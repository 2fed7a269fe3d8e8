"""`tollgate drift watch`: scheduled checks over a growing capture log, published as results and gauges.

Each check reads the new lines of the log (drift.log_tail), checks the last --window of it through the
same steps as `drift check` (drift.pipeline), writes reports/drift/<check_id>.json, and sets the gauges
(drift.gauges) `tollgate_drift_score{feature}` (effect size), `tollgate_drift_p_value{feature}`,
`tollgate_drift_detected` (1 while an alarm stands) and `tollgate_drift_sequential_log_e`.

The watch sends no alert itself: `tollgate monitor --target <this /metrics>` does, through its
`DriftDetected` rule on `tollgate_drift_detected` (fires when an alarm is raised, resolves when a later
window shows no drift). The deprecated --slack-webhook/--webhook flags start that monitor as a child
(drift.legacy_alerts). Decisions are sequential by default (drift.sequential: false alarms at most one per
ARL windows); `--per-window` uses each window's own decision instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

from drift import legacy_alerts
from drift.check import CheckSettings
from drift.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from drift.features import TABLE_SUFFIXES
from drift.gauges import Gauges
from drift.log_tail import LogTail
from drift.pipeline import attach_evidently, check_window, out_error, publish, settings_from
from drift.profile import Profile, ProfileError, load_profile
from drift.sequential import SequentialDetector

DEFAULT_WINDOW_S = 3600.0


@dataclass
class Alarm:
    """The standing drift alarm `tollgate_drift_detected` shows: raised by a check that decides drift,
    cleared only by a later check where neither the alarm nor the window itself shows drift."""

    standing: bool = False

    def update(self, result: dict[str, Any]) -> bool:
        alarm = result["drift_detected"]
        window_drift = result.get("sequential", {}).get("window_drift", alarm)
        if alarm:
            self.standing = True
        elif not window_drift:
            self.standing = False
        return self.standing


def _flag_error(args: argparse.Namespace) -> str | None:
    if args.embeddings:
        return "--embeddings is for profile and check; watch uses the prompt sketches"
    if Path(args.live).suffix.lower() in TABLE_SUFFIXES:
        return f"{args.live}: watch tails a JSONL log (capture log or request bodies), not a table"
    return None


def _open(args: argparse.Namespace) -> tuple[Profile, CheckSettings]:
    """The profile and settings, and the --out folder made; ValueError says what is wrong and how to fix it."""
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(out_error(args.out, exc)) from exc
    try:
        settings = settings_from(args)
        return load_profile(args.profile), settings
    except ProfileError as exc:
        raise ValueError(str(exc)) from exc


def _stop_event() -> threading.Event:
    """Set by SIGTERM or SIGINT: the watch finishes its current check and stops."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _check(
    args: argparse.Namespace,
    tail: LogTail,
    profile: Profile,
    settings: CheckSettings,
    seq: SequentialDetector | None,
) -> dict[str, Any]:
    """One scheduled check: the new lines, the last window of them, the published result."""
    now = time.time()
    bounds = (now - (args.window or DEFAULT_WINDOW_S), now)
    tail.poll(now)
    live = tail.window(*bounds)
    result = check_window(profile, live, settings, bounds, seq)
    attach_evidently(result, profile, live, args.evidently_report)  # rewritten each check: the latest window
    publish(result, args.out)
    return result


def _watch(
    args: argparse.Namespace, profile: Profile, settings: CheckSettings, gauges: Gauges, stop: threading.Event
) -> None:
    tail = LogTail(Path(args.live))
    seq = None if args.per_window else SequentialDetector(arl=args.arl)
    alarm = Alarm()
    checks = 0
    while not stop.is_set():
        result = _check(args, tail, profile, settings, seq)
        gauges.update(result, alarm.update(result), seq.log_cusum if seq else 0.0)
        checks += 1
        if args.max_checks and checks >= args.max_checks:
            return
        stop.wait(args.interval)


def run_watch(args: argparse.Namespace) -> int:
    """Check on a schedule until stopped (or --max-checks); exit 0, or 2 for bad input."""
    try:
        problem = _flag_error(args)
        if problem:
            raise ValueError(problem)
        profile, settings = _open(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gauges = Gauges()
    server, _ = start_http_server(args.port, addr=args.host, registry=gauges.registry)
    url = f"http://{args.host}:{server.server_port}/metrics"
    print(f"metrics on {url}", flush=True)
    stop = _stop_event()
    monitor = legacy_alerts.AlertingMonitor(args, url) if legacy_alerts.wanted(args) else None
    try:
        _watch(args, profile, settings, gauges, stop)
    finally:
        if monitor is not None:
            monitor.stop()
        server.shutdown()
    return EXIT_OK

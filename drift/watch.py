"""`tollgate drift watch`: scheduled checks over a growing capture log, gauges, and alerts.

The log is tailed by byte offset: only new complete lines are parsed (a last line still being written is
kept until its newline arrives; a truncated or rotated file is read again from the start). Rows older
than the window are dropped, so memory is bounded by the window, not by the log.

Each check writes reports/drift/<check_id>.json, sets the gauges `tollgate_drift_score{feature}` (effect
size), `tollgate_drift_p_value{feature}`, `tollgate_drift_detected` (1 while an alarm stands) and
`tollgate_drift_sequential_log_e`, and on an alarm sends a `DriftDetected` alert through the monitors'
notifier (Slack and/or webhook, with its outbox and retries); a later window without drift resolves it.
Decisions are sequential by default (drift.sequential: false alarms at most one per ARL windows);
`--per-window` uses each window's own decision instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from drift.check import run_check
from drift.cli import EXIT_BAD_INPUT, EXIT_OK, apply_sequential, out_error, parse_duration, settings_from
from drift.features import CATEGORICAL, NUMERIC, TABLE_SUFFIXES, Features, record_features
from drift.profile import ProfileError, load_profile
from drift.report import evidently_report, print_table, write_result
from drift.sequential import SequentialDetector
from tollgate.contracts import server_metrics as names


def add_watch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval", type=parse_duration, default=60.0, help="seconds between checks (default 60s)"
    )
    p.add_argument("--host", default="127.0.0.1", help="metrics address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9109, help="metrics port (0: any free port; default 9109)")
    p.add_argument("--per-window", action="store_true", help="alarm on each window's own decision")
    p.add_argument("--arl", type=float, default=1000.0, help="sequential: mean windows between false alarms")
    p.add_argument("--slack-webhook", help="Slack incoming webhook URL (or TOLLGATE_SLACK_WEBHOOK)")
    p.add_argument("--webhook", help="generic webhook URL (or TOLLGATE_WEBHOOK_URL)")
    p.add_argument("--store", default="reports/drift/notify.db", help="notifier outbox database")
    p.add_argument("--max-checks", type=int, default=0, help="stop after N checks (0: run until stopped)")


class LogTail:
    """New complete lines of a growing JSONL file, parsed into feature rows."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.lineno, self.partial = path, 0, 0, b""
        self.rows: deque[tuple[float, dict[str, Any], list[float]]] = deque()
        self.skipped = 0
        self.warnings: list[str] = []

    def poll(self, now: float) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.offset:  # truncated or rotated: start over
            self.offset, self.lineno, self.partial = 0, 0, b""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # b"" after a final newline, else a line still being written
        for raw in lines:
            self.lineno += 1
            if raw.strip():
                self._add(raw, now)

    def _add(self, raw: bytes, now: float) -> None:
        try:
            row, vector, ts = record_features(json.loads(raw))
        except ValueError as exc:  # JSONDecodeError is a ValueError
            self.skipped += 1
            if len(self.warnings) < 20:
                self.warnings.append(f"{self.path}:{self.lineno}: {exc}; line skipped")
            return
        self.rows.append((now if ts is None else ts, row, vector))

    def window(self, start: float, end: float) -> Features:
        while self.rows and self.rows[0][0] <= start:
            self.rows.popleft()
        kept = [r for r in self.rows if r[0] <= end]
        table = pd.DataFrame([r[1] for r in kept], columns=[*NUMERIC, *CATEGORICAL])
        for name in NUMERIC:
            table[name] = table[name].astype(float)
        dims = {len(r[2]) for r in kept}
        vectors = np.asarray([r[2] for r in kept], dtype=float) if len(dims) == 1 and 0 not in dims else None
        feats = Features(table, vectors, np.asarray([r[0] for r in kept]), self.skipped, list(self.warnings))
        self.warnings.clear()
        return feats


class Gauges:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.score = Gauge(
            names.DRIFT_SCORE,
            "drift effect size per feature (latest check)",
            ["feature"],
            registry=self.registry,
        )
        self.p_value = Gauge(
            names.DRIFT_P_VALUE,
            "adjusted p-value per feature (latest check)",
            ["feature"],
            registry=self.registry,
        )
        self.detected = Gauge(
            names.DRIFT_DETECTED, "1 while a drift alarm stands, else 0", registry=self.registry
        )
        self.log_e = Gauge(
            names.DRIFT_SEQUENTIAL_LOG_E,
            "sequential detector statistic (alarm at log ARL)",
            registry=self.registry,
        )
        self.live_rows = Gauge(
            names.DRIFT_LIVE_ROWS, "rows in the latest checked window", registry=self.registry
        )

    def update(self, result: dict[str, Any], detected: bool, log_e: float) -> None:
        rows = result["features"] + ([result["multivariate"]] if result["multivariate"] else [])
        for r in rows:
            if r["status"] != "decided":  # no stale value for a feature this window could not decide
                for gauge in (self.score, self.p_value):
                    with contextlib.suppress(KeyError):
                        gauge.remove(r["feature"])
            else:
                self.score.labels(r["feature"]).set(
                    r["effect_size"] if r["effect_size"] is not None else r["statistic"]
                )
                if r["p_adjusted"] is not None:
                    self.p_value.labels(r["feature"]).set(r["p_adjusted"])
        self.detected.set(1 if detected else 0)
        self.log_e.set(log_e)
        self.live_rows.set(result["window"]["n_live"])


def _alert(state: str, result: dict[str, Any], source: str, since: float) -> Any:
    from monitors.notify import Alert

    rows = result["features"] + ([result["multivariate"]] if result["multivariate"] else [])
    drifted = [r for r in rows if r["drift"]]
    top = max(drifted, key=lambda r: r["effect_size"] or 0.0, default=None)
    names = ", ".join(r["feature"] for r in drifted) or "none in this window"
    return Alert(
        rule="DriftDetected",
        state=state,
        labels={"source": source},
        value=None if top is None else top["effect_size"],
        threshold=None if top is None else top["effect_threshold"],
        comparison=">=",
        active_since=since,
        summary=f"Live requests drifted from the reference profile ({names})"
        if state == "firing"
        else "Drift resolved",
        description=f"check {result.get('check_id')}: {result['window']['n_live']} live rows; drifted: {names}",
    )


def run_watch(args: argparse.Namespace) -> int:
    if args.embeddings:
        print("error: --embeddings is for profile and check; watch uses the prompt sketches", file=sys.stderr)
        return EXIT_BAD_INPUT
    if Path(args.live).suffix.lower() in TABLE_SUFFIXES:
        print(
            f"error: {args.live}: watch tails a JSONL log (capture log or request bodies), not a table",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: {out_error(args.out, exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        settings = settings_from(args)
        profile = load_profile(args.profile)
    except (ProfileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gauges = Gauges()
    server, _ = start_http_server(args.port, addr=args.host, registry=gauges.registry)
    print(f"metrics on http://{args.host}:{server.server_port}/metrics", flush=True)
    notifier = None
    if (
        args.slack_webhook
        or args.webhook
        or os.environ.get("TOLLGATE_SLACK_WEBHOOK")
        or os.environ.get("TOLLGATE_WEBHOOK_URL")
    ):
        from monitors.notify import Notifier

        notifier = Notifier(args.store, slack_webhook=args.slack_webhook, webhook_url=args.webhook).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    tail = LogTail(Path(args.live))
    window_s = args.window or 3600.0
    seq = None if args.per_window else SequentialDetector(arl=args.arl)
    detected, since, checks = False, 0.0, 0
    try:
        while not stop.is_set():
            now = time.time()
            tail.poll(now)
            live = tail.window(now - window_s, now)
            result = run_check(profile, live, settings, (now - window_s, now))
            if seq is not None:
                result = apply_sequential(result, seq)
            alarm = result["drift_detected"]
            window_drift = result.get("sequential", {}).get("window_drift", alarm)
            if args.evidently_report:  # rewritten at every check: the latest window
                try:
                    result["evidently_report"] = str(evidently_report(profile, live, args.evidently_report))
                except Exception as exc:  # Evidently's own errors must not stop the watch
                    result["warnings"].append(f"Evidently report failed: {type(exc).__name__}: {exc}")
            path = write_result(result, args.out)
            print_table(result)
            print(f"result: {path}", flush=True)
            if alarm and not detected:
                detected, since = True, now
                if notifier:
                    notifier.notify(_alert("firing", result, args.live, since))
            elif detected and not window_drift and not alarm:
                detected = False
                if notifier:
                    notifier.notify(_alert("resolved", result, args.live, since))
            gauges.update(result, detected, seq.log_cusum if seq else 0.0)
            checks += 1
            if args.max_checks and checks >= args.max_checks:
                break
            stop.wait(args.interval)
    finally:
        if notifier is not None:
            deadline = time.time() + 10
            while notifier.next_due() is not None and time.time() < deadline:
                notifier.deliver_pending()
                time.sleep(0.1)
            notifier.close()
        server.shutdown()
    return EXIT_OK

"""`tollgate monitor ...`: the embedded monitor and its helper commands.

    tollgate monitor --target URL [--target URL ...] [--rules rules.yaml] [--slack-webhook URL]
                     [--webhook URL] [--interval 5s] [--store reports/monitor.db]
    tollgate monitor gpu [--port 9400] [--pid PID]
    tollgate monitor export-prometheus --out DIR [--target URL ...] [--rules rules.yaml]
    tollgate monitor silence add alertname=TargetDown target=~'.*:8000.*' --for 2h --comment "deploy"
    tollgate monitor silence list [--all] | silence expire ID

Exit codes: 0 done, 1 runtime failure, 2 bad arguments or a bad rules file.
Webhook URLs are best passed as TOLLGATE_SLACK_WEBHOOK / TOLLGATE_WEBHOOK_URL (not visible in `ps`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from monitors.rules import RuleError, load_rules
from tollgate.contracts.durations import duration_arg as _duration

if TYPE_CHECKING:  # imported where the monitor runs, so the subcommands' --help stays light
    from monitors.monitor import Monitor
    from monitors.notify import Notifier
    from monitors.rule import Rule

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
DEFAULT_STORE = "reports/monitor.db"
SUBCOMMANDS = ("gpu", "export-prometheus", "silence")


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tollgate monitor", description="Scrape servers, store history, alert.")
    p.add_argument(
        "--target", action="append", required=True, metavar="URL", help="metrics endpoint (repeatable)"
    )
    p.add_argument(
        "--rules", type=Path, default=DEFAULT_RULES, help="alert rules YAML (default: shipped rules)"
    )
    p.add_argument("--slack-webhook", default=None, metavar="URL", help="Slack incoming webhook (or env)")
    p.add_argument("--webhook", default=None, metavar="URL", help="Alertmanager-format JSON webhook (or env)")
    p.add_argument("--interval", type=_duration, default=5.0, help="scrape interval, e.g. 5s, 500ms")
    p.add_argument("--window", type=_duration, default=60.0, help="window of stored rates/percentiles")
    p.add_argument("--store", type=Path, default=Path(DEFAULT_STORE))
    p.add_argument("--dashboard-url", default=None, help="link put in notifications")
    p.add_argument(
        "--repeat-interval", type=_duration, default=4 * 3600.0, help="re-send firing alerts this often"
    )
    p.add_argument("--group-by", default="alertname", help="comma-separated labels grouping notifications")
    p.add_argument(
        "--duration", type=_duration, default=None, help="stop after this long (default: run forever)"
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        return {"gpu": _gpu, "export-prometheus": _export, "silence": _silence}[argv[0]](argv[1:])
    args = _run_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    try:
        rules = load_rules(args.rules)
    except RuleError as exc:
        print(f"tollgate monitor: {exc}", file=sys.stderr)
        return 2
    from monitors.monitor import Monitor, MonitorConfig
    from monitors.notify import Notifier
    from monitors.scrape import metrics_url

    targets = [metrics_url(t) for t in args.target]
    try:
        notifier = Notifier(args.store, args.slack_webhook, args.webhook, args.dashboard_url)
    except (OSError, sqlite3.Error) as exc:
        print(f"tollgate monitor: {store_error(args.store, exc)}", file=sys.stderr)
        return 2
    config = MonitorConfig(
        targets=targets, interval_s=args.interval, window_s=args.window, repeat_interval_s=args.repeat_interval,
        group_by=tuple(g.strip() for g in args.group_by.split(",") if g.strip()),
    )  # fmt: skip
    monitor = Monitor(config, notifier.store, rules, notifier)
    _warn_unevaluable(rules, args.interval)
    _warn_stranded(notifier, args.store)
    receivers = ", ".join(notifier.receivers) or "none (alerts are only stored)"
    print(
        f"tollgate monitor: {len(targets)} target(s) every {args.interval:g}s, {len(rules)} rules, "
        f"store {args.store}, receivers {receivers}",
        flush=True,
    )
    notifier.start()
    try:
        asyncio.run(_run_until_signal(monitor, args.duration))
    finally:
        notifier.close()
    return 0


def _warn_unevaluable(rules: list[Rule], interval_s: float) -> None:
    """A rate, quantile or ratio needs two scrapes inside its window: say which rules never get them."""
    for rule in rules:
        if rule.kind in ("rate", "quantile", "ratio") and rule.window_s < 2 * interval_s:
            print(
                f"tollgate monitor: warning: rule {rule.name} ({rule.source}) has window {rule.window_s:g}s, "
                f"under two scrape intervals ({2 * interval_s:g}s); it can never be evaluated",
                file=sys.stderr,
            )


def _warn_stranded(notifier: Notifier, store: Path) -> None:
    """Undelivered messages of a previous run whose webhook is not configured now wait in the outbox."""
    stranded = [
        r
        for r in notifier.outbox.rows()
        if r["status"] in ("pending", "retrying") and r["receiver"] not in notifier.receivers
    ]
    if stranded:
        print(
            f"tollgate monitor: warning: {len(stranded)} undelivered notification(s) in {store} belong to "
            "webhooks not configured now (receiver ids are hashes of their URLs)",
            file=sys.stderr,
        )


async def _run_until_signal(monitor: Monitor, duration_s: float | None) -> None:
    """The monitor loop until SIGINT/SIGTERM or `duration_s`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await monitor.run(stop, duration_s)


def store_error(path: Path, exc: Exception) -> str:
    """One line for a store that cannot be created or opened: the path, the cause, the fix."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    return (
        f"cannot open the store {path}: {reason}{where}; "
        "pass --store with a path whose folder can be created and written"
    )


def _gpu(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="tollgate monitor gpu", description="GPU (NVML, dcgm names) and host exporter."
    )
    p.add_argument("--port", type=int, default=9400)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--pid", type=int, default=None, help="also export CPU and memory of this process")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    from monitors.gpu import serve

    try:
        serve(args.port, args.host, args.pid)
    except OSError as exc:
        print(
            f"tollgate monitor gpu: cannot listen on {args.host}:{args.port} ({exc.strerror}); pick another --port"
        )
        return 1
    except Exception as exc:  # psutil.NoSuchProcess for a bad --pid
        print(f"tollgate monitor gpu: {exc}", file=sys.stderr)
        return 2
    print(f"tollgate monitor gpu: serving http://{args.host}:{args.port}/metrics", flush=True)
    stop = False

    def handle(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handle)
    try:
        while not stop:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    return 0


def _export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tollgate monitor export-prometheus")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--target", action="append", default=None, metavar="URL")
    p.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    p.add_argument("--interval", type=_duration, default=5.0)
    p.add_argument("--alertmanager", default="127.0.0.1:9093")
    p.add_argument("--slack-url-file", default="/etc/alertmanager/slack_webhook_url")
    p.add_argument("--dashboard-url", default=None)
    p.add_argument(
        "--window",
        type=_duration,
        default=60.0,
        help="window of the recorded tollgate:* figures (default 1m)",
    )
    args = p.parse_args(argv)
    try:
        rules = load_rules(args.rules)
    except RuleError as exc:
        print(f"tollgate monitor export-prometheus: {exc}", file=sys.stderr)
        return 2
    from monitors.export import write_all

    targets = args.target or ["http://127.0.0.1:8000/metrics"]
    for path in write_all(
        args.out,
        rules,
        targets,
        args.interval,
        args.alertmanager,
        args.slack_url_file,
        dashboard_url=args.dashboard_url,
        window_s=args.window,
    ):
        print(f"wrote {path}")
    print(f"put the Slack webhook URL in {args.slack_url_file} (it is never written into the configs)")
    return 0


def parse_matcher(text: str) -> list[str]:
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(=~|!=|=)(.*)", text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a matcher; write label=value, label=~regex or label!=value"
        )
    if m.group(2) == "=~":
        try:
            re.compile(m.group(3))
        except re.error as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: bad regular expression ({exc})") from None
    return [m.group(1), m.group(2), m.group(3)]


def _silence(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tollgate monitor silence")
    p.add_argument("--store", type=Path, default=Path(DEFAULT_STORE))
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="silence alerts whose labels match all matchers")
    add.add_argument(
        "matchers", nargs="+", type=parse_matcher, help="label=value, label=~regex, label!=value"
    )
    add.add_argument("--for", dest="duration", type=_duration, default=3600.0)
    add.add_argument("--comment", default="")
    add.add_argument("--by", default=None, help="author (default: current user)")
    ls = sub.add_parser("list", help="active silences (all with --all)")
    ls.add_argument("--all", action="store_true")
    ex = sub.add_parser("expire", help="end a silence now")
    ex.add_argument("id", type=int)
    args = p.parse_args(argv)
    from monitors.store import Store

    try:
        store = Store(args.store)
    except (OSError, sqlite3.Error) as exc:
        print(f"tollgate monitor silence: {store_error(args.store, exc)}", file=sys.stderr)
        return 2
    now = time.time()
    if args.action == "add":
        sid = store.add_silence(
            args.matchers, now, now + args.duration, args.by or getpass.getuser(), args.comment
        )
        print(
            f"silence {sid} until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now + args.duration))}"
        )
        return 0
    if args.action == "list":
        from rich.console import Console
        from rich.table import Table

        table = Table("id", "matchers", "until", "by", "comment")
        for s in store.silences(now, active_only=not args.all):
            matchers = " ".join(f"{n}{op}{v}" for n, op, v in s["matchers"])
            until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["ends_at"]))
            table.add_row(str(s["id"]), matchers, until, s["created_by"] or "", s["comment"] or "")
        Console().print(table)
        return 0
    if not store.expire_silence(args.id, now):
        print(f"tollgate monitor silence: no active silence with id {args.id}", file=sys.stderr)
        return 1
    print(f"silence {args.id} expired")
    return 0

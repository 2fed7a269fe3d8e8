"""`tollgate canary --baseline TARGET --canary TARGET [--store PATH | --prometheus URL] --window 10m`.

Judges the canary against the baseline over the last --window (release.canary), prints the table,
writes the JSON verdict (stdout with --json, or --out FILE). Exit codes
(tollgate.contracts.release.CANARY_EXIT): 0 pass, 1 fail, 2 no decision (bad flags, unknown
target, unreadable source, no data), 3 marginal.

`--serve HOST:PORT` instead answers progressive-delivery controllers, judging on each call:
    POST /flagger   Flagger webhook: body {"name", "namespace", "phase", "metadata"}; metadata may set
                    baseline, canary, window. 200 = pass, 412 = marginal or fail, 503 = no data,
                    400 = bad input (every non-2xx fails the Flagger check).
    GET|POST /analysis   Argo Rollouts web metric: always 200 with the verdict JSON (query string or
                    JSON body may set baseline, canary, window); use jsonPath "{$.score}" with
                    successCondition "result >= 95", or "{$.pass}" with "result == true".
    GET /health
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgen.cli import parse_duration
from release.sources import PrometheusSource, SourceError, StoreSource
from tollgate.contracts.release import CANARY_EXIT

if TYPE_CHECKING:  # release.canary's statistics (scipy, statsmodels) load when a judgement runs
    from release.canary import Judgement

EXIT_NO_DECISION = CANARY_EXIT["nodata"]
FLAGGER_STATUS = {"pass": 200, "marginal": 412, "fail": 412, "nodata": 503}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate canary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--baseline", required=True, help="baseline deployment: store target or PromQL matchers")
    p.add_argument("--canary", required=True, help="canary deployment: store target or PromQL matchers")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--store", default=None, help="monitor store (default reports/monitor.db)")
    src.add_argument("--prometheus", metavar="URL", help="Prometheus base URL, e.g. http://prometheus:9090")
    p.add_argument("--window", type=parse_duration, default=600.0, help="analysis window ending now")
    p.add_argument("--step", type=parse_duration, default=30.0, help="Prometheus: seconds per sample")
    p.add_argument("--rate-window", default="1m", help="Prometheus: range of rate() and quantiles")
    p.add_argument("--confidence", type=float, default=0.95, help="Mann-Whitney confidence level")
    p.add_argument("--min-effect", type=float, default=0.10, help="smallest relative shift that fails")
    p.add_argument("--min-samples", type=int, default=5, help="per side and metric, else NoData")
    p.add_argument("--correction", choices=("none", "holm", "bh"), default="none")
    p.add_argument("--pass-score", type=float, default=95.0)
    p.add_argument("--marginal-score", type=float, default=75.0)
    p.add_argument("--json", action="store_true", help="print the verdict JSON instead of the table")
    p.add_argument("--out", help="also write the verdict JSON to this file")
    p.add_argument("--serve", metavar="HOST:PORT", help="answer Flagger / Argo Rollouts webhooks instead")
    return p


def make_source(args: argparse.Namespace) -> StoreSource | PrometheusSource:
    if args.prometheus:
        return PrometheusSource(args.prometheus, args.step, args.rate_window)
    return StoreSource(args.store or "reports/monitor.db")


def judgement_of(args: argparse.Namespace) -> Judgement:
    from release.canary import Judgement

    return Judgement(
        confidence=args.confidence,
        min_effect=args.min_effect,
        min_samples=args.min_samples,
        correction=args.correction,
        pass_score=args.pass_score,
        marginal_score=args.marginal_score,
    )


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not 0 < args.confidence < 1:
        parser.error(f"--confidence {args.confidence} must be between 0 and 1, e.g. 0.95")
    if not 0 <= args.marginal_score <= args.pass_score <= 100:
        parser.error("scores must satisfy 0 <= --marginal-score <= --pass-score <= 100")
    if args.min_samples < 2:
        parser.error("--min-samples must be at least 2")
    if args.serve and not _hostport(args.serve):
        parser.error(f"--serve '{args.serve}' must be HOST:PORT, e.g. 0.0.0.0:8088")


def _hostport(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    return (host, int(port)) if host and port.isdigit() and 0 < int(port) < 65536 else None


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from release.canary import judge

    validate(args, parser)
    try:
        source = make_source(args)
    except SourceError as exc:
        print(f"tollgate canary: {exc}", file=sys.stderr)
        return EXIT_NO_DECISION
    if args.serve:
        return serve(args, source)
    try:
        result = judge(source, args.baseline, args.canary, args.window, judgement_of(args))
    except SourceError as exc:
        print(f"tollgate canary: {exc}", file=sys.stderr)
        return EXIT_NO_DECISION
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return result["exit_code"]


def serve(args: argparse.Namespace, source: StoreSource | PrometheusSource) -> int:
    import uvicorn

    host, port = _hostport(args.serve)  # type: ignore[misc]
    print(
        f"tollgate canary: serving Flagger (POST /flagger) and Argo Rollouts (GET /analysis) on http://{host}:{port}",
        file=sys.stderr,
    )
    from release.webhook import create_app

    uvicorn.run(create_app(args, source), host=host, port=port, log_level="warning")
    return 0


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"canary {result['canary']} vs baseline {result['baseline']}: {result['verdict']}")
    for col in ("metric", "class", "baseline median", "canary median", "shift", "Cliff's d", "p", "n"):
        table.add_column(col, justify="left" if col in ("metric", "class") else "right")
    for name, r in result["metrics"].items():
        table.add_row(
            name,
            r["classification"] + ("" if r["classification"] == "NoData" or r["passed"] else " (fail)"),
            _fmt(r.get("median_a")),
            _fmt(r.get("median_b")),
            "-" if r.get("relative_shift") is None else f"{r['relative_shift']:+.1%}",
            "-" if r.get("cliffs_delta") is None else f"{r['cliffs_delta']:+.2f}",
            _fmt(r.get("p_adjusted")),
            f"{r['n_a']}/{r['n_b']}",
        )
    console = Console()
    console.print(table)
    console.print(f"score {result['score']:.0f}: {result['reason']}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"

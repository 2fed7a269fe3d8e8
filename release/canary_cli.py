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
from typing import Any

from release.canary_flags import hostport, judgement_of, make_source, validate
from release.flags import new_parser
from release.sources import PrometheusSource, SourceError, StoreSource
from release.table import number, print_metric_table, share, signed
from tollgate.contracts.durations import duration_arg
from tollgate.contracts.files import write_json_atomic
from tollgate.contracts.release import CANARY_EXIT

EXIT_NO_DECISION = CANARY_EXIT["nodata"]


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("tollgate canary", __doc__)
    p.add_argument("--baseline", required=True, help="baseline deployment: store target or PromQL matchers")
    p.add_argument("--canary", required=True, help="canary deployment: store target or PromQL matchers")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--store", default=None, help="monitor store (default reports/monitor.db)")
    src.add_argument("--prometheus", metavar="URL", help="Prometheus base URL, e.g. http://prometheus:9090")
    p.add_argument("--window", type=duration_arg, default=600.0, help="analysis window ending now")
    p.add_argument("--step", type=duration_arg, default=30.0, help="Prometheus: seconds per sample")
    p.add_argument(
        "--rate-window", type=duration_arg, default=60.0, help="Prometheus: range of rate() and quantiles"
    )
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
        write_json_atomic(args.out, result, newline=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return result["exit_code"]


def serve(args: argparse.Namespace, source: StoreSource | PrometheusSource) -> int:
    import uvicorn

    host, port = hostport(args.serve)  # type: ignore[misc]
    print(
        f"tollgate canary: serving Flagger (POST /flagger) and Argo Rollouts (GET /analysis) on http://{host}:{port}",
        file=sys.stderr,
    )
    from release.webhook import create_app

    uvicorn.run(create_app(args, source), host=host, port=port, log_level="warning")
    return 0


def print_table(result: dict[str, Any]) -> None:
    columns = ("metric", "class", "baseline median", "canary median", "shift", "Cliff's d", "p", "n")
    rows = (
        (
            name,
            r["classification"] + ("" if r["classification"] == "NoData" or r["passed"] else " (fail)"),
            number(r.get("median_a")),
            number(r.get("median_b")),
            share(r.get("relative_shift")),
            signed(r.get("cliffs_delta")),
            number(r.get("p_adjusted")),
            f"{r['n_a']}/{r['n_b']}",
        )
        for name, r in result["metrics"].items()
    )
    title = f"canary {result['canary']} vs baseline {result['baseline']}: {result['verdict']}"
    print_metric_table(title, columns, 2, rows, [f"score {result['score']:.0f}: {result['reason']}"])

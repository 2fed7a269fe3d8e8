"""`tollgate sweep --url URL --slo slo.toml (--rates 1,2,4 | --concurrency 1,4,16) [load flags]`.

Every flag `tollgate load` knows (except --users/--rate/--duration/--requests/--name) is passed
to each step. Writes reports/sweeps/<sweep-id>/sweep.json and sweep.html; exit 0 when a knee was
found, 1 when no step met the SLO, 2 for bad flags or SLO file.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from loadgen import cli
from loadgen.gate import load_run
from loadgen.slo import SLOError, load_slo
from loadgen.sweep import knee, point, stop_reason, write_sweep


def _loads(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None
    if not values or any(v <= 0 for v in values) or values != sorted(values):
        raise argparse.ArgumentTypeError(f"'{text}' must be increasing positive numbers, e.g. 1,2,4,8")
    return values


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tollgate sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--slo", required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rates", type=_loads, help="open loop: requests/s per step, e.g. 1,2,4,8")
    mode.add_argument("--concurrency", type=_loads, help="closed loop: users per step, e.g. 1,4,16")
    parser.add_argument("--step-duration", default="30s", help="length of each step")
    parser.add_argument("--name", default="sweep")
    parser.add_argument("--sweep-out", default="reports/sweeps")
    args, rest = parser.parse_known_args(argv)
    try:
        slo = load_slo(args.slo)
    except SLOError as exc:
        print(f"tollgate sweep: {exc}", file=sys.stderr)
        return 2
    load_parser = cli.build_parser()
    for flag in ("--users", "--rate", "--duration", "--requests", "--name"):
        if flag in rest:
            parser.error(f"{flag} is set by the sweep; remove it")
    sweep_id = f"{args.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    kind = "rate" if args.rates else "concurrency"
    points = []
    reason = None
    # every output location is proven writable before the first step loads the server
    out = load_parser.parse_args([*rest, "--users", "1", "--requests", "1"]).out
    for folder, value, option in (
        (Path(args.sweep_out) / sweep_id, args.sweep_out, "--sweep-out"),
        (Path(out), out, "--out"),
    ):
        problem = cli.check_run_dir(folder, value, option)
        if problem:
            print(f"tollgate sweep: {problem}", file=sys.stderr)
            return 2
    for load in args.rates or args.concurrency:
        flag = ["--rate", f"{load:g}"] if kind == "rate" else ["--users", str(int(load))]
        step_args = load_parser.parse_args(
            [*rest, *flag, "--duration", args.step_duration, "--name", f"{sweep_id}-{kind}{load:g}"]
        )
        run_dir, _ = cli.run_load(step_args, load_parser)
        points.append(point(load, load_run(run_dir, strict=False), slo))
        p = points[-1]
        print(
            f"{kind} {load:g}: {p['requests_per_s']:.2f} req/s, E2E p50 {p['e2e_p50_ms']} ms, {'PASS' if p['passed'] else 'FAIL ' + ', '.join(p['failed_checks'])}",
            file=sys.stderr,
        )
        reason = stop_reason(points, kind)
        if reason:
            print(f"stopping early: {reason}", file=sys.stderr)
            break
    folder = write_sweep(Path(args.sweep_out), sweep_id, kind, points, slo, reason)
    best = knee(points)
    print(
        f"knee: {kind} {best['load']:g} ({best['requests_per_s']:.2f} req/s)"
        if best
        else "knee: none (no step met the SLO)"
    )
    print(folder)
    return 0 if best else 1

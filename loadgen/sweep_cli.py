"""`tollgate sweep --url URL --slo slo.toml (--rates 1,2,4 | --concurrency 1,4,16) [load flags]`.

Every flag `tollgate load` knows (except --users/--rate/--duration/--requests/--name) is passed
to each step. Writes reports/sweeps/<sweep-id>/sweep.json and sweep.html; exit 0 when a knee was
found, 1 when no step met the SLO, 2 for bad flags or SLO file.

With `--target-rate R [--price-per-hour P] [--headroom 0.2]` sweep.json also gets a `capacity`
block (loadgen.capacity): replicas needed for R at the knee, tokens/s per replica, cost per
million output and input tokens, and the assumptions behind the estimate.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from loadgen import capacity, cli
from loadgen.flags import positive_float
from loadgen.slo import SLOError, load_slo
from tollgate.contracts.durations import duration_arg


def _loads(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None
    if not values or any(v <= 0 for v in values) or values != sorted(values):
        raise argparse.ArgumentTypeError(f"'{text}' must be increasing positive numbers, e.g. 1,2,4,8")
    return values


def _headroom(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be a fraction in [0, 1), e.g. 0.2 for 20%")
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tollgate sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--slo", required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rates", type=_loads, help="open loop: requests/s per step, e.g. 1,2,4,8")
    mode.add_argument("--concurrency", type=_loads, help="closed loop: users per step, e.g. 1,4,16")
    parser.add_argument("--step-duration", type=duration_arg, default=30.0, help="length of each step")
    parser.add_argument("--name", default="sweep")
    parser.add_argument("--sweep-out", default="reports/sweeps")
    plan = parser.add_argument_group("capacity and cost (see loadgen/capacity.py for the assumptions)")
    plan.add_argument("--target-rate", type=positive_float, help="peak requests/s to plan replicas for")
    plan.add_argument(
        "--price-per-hour", type=positive_float, help="cost of one replica per hour (any currency)"
    )
    plan.add_argument(
        "--headroom", type=_headroom, default=0.2, help="fraction of each replica's capacity kept free"
    )
    args, rest = parser.parse_known_args(argv)
    # imported after parsing: the gate's scipy/pandas take ~2 s, `--help` should not wait for them
    from loadgen.gate import load_run
    from loadgen.sweep import knee, knee_point, point, stop_reason, write_sweep

    if args.price_per_hour is not None and args.target_rate is None:
        parser.error("--price-per-hour needs --target-rate R (the load the cost is computed at)")
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
            [*rest, *flag, "--duration", str(args.step_duration), "--name", f"{sweep_id}-{kind}{load:g}"]
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
    plan_block = (
        None
        if args.target_rate is None
        else capacity.plan(knee_point(points), args.target_rate, args.price_per_hour, args.headroom)
    )
    folder = write_sweep(Path(args.sweep_out), sweep_id, kind, points, slo, reason, plan_block)
    best = knee(points)
    print(
        f"knee: {kind} {best['load']:g} ({best['requests_per_s']:.2f} req/s)"
        if best
        else "knee: none (no step met the SLO)"
    )
    if plan_block is not None:
        print_plan(plan_block)
    print(folder)
    return 0 if best else 1


def print_plan(block: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    if not block.get("feasible"):
        print(f"capacity: {block['reason']}")
        return
    table = Table(title="capacity and cost at the knee")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("capacity per replica (req/s)", block["capacity_per_replica_rps"]),
        ("output tokens/s per replica", block["output_tokens_per_s_per_replica"]),
        (
            f"replicas for {block['target_rate_per_s']:g} req/s ({block['headroom']:.0%} headroom)",
            block["replicas"],
        ),
        ("cost per hour", block["cost_per_hour"]),
        ("cost per 1M output tokens", block["cost_per_million_output_tokens"]),
        ("cost per 1M input tokens", block["cost_per_million_input_tokens"]),
    ]
    for name, value in rows:
        table.add_row(
            name, "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
        )
    console = Console()
    console.print(table)
    console.print("assumes: " + "; ".join(block["assumptions"]))

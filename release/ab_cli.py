"""`tollgate ab --url-a URL --url-b URL [--order concurrent|sequential] [load flags]`.

Every `tollgate load` flag except --url/--out/--name applies to both sides (same seed, same
workload). Writes reports/ab/<ab-id>/ with a/ and b/ run folders and ab.json, prints the
comparison table and the folder. Exit codes (tollgate.contracts.release.AB_EXIT): 0 = B can ship
(b-better or no-difference), 1 = B is worse (a-better), 2 = no decision (inconclusive, bad flags,
a server unreachable or a side's run failed).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loadgen import cli
from loadgen.config import RunConfig
from release.flags import new_parser
from release.table import number, print_metric_table, share, signed
from tollgate.contracts.durations import duration_arg
from tollgate.contracts.files import numpy_scalars, write_json_atomic
from tollgate.contracts.release import AB_EXIT, RELEASE_SCHEMA_VERSION

SET_BY_AB = ("--url", "--out", "--name")
MAX_START_DELAY_S = 20.0


def build_parser() -> argparse.ArgumentParser:
    p = new_parser("tollgate ab", __doc__)
    p.add_argument("--url-a", required=True, help="server A (the reference, e.g. production)")
    p.add_argument("--url-b", required=True, help="server B (the candidate)")
    p.add_argument(
        "--order",
        choices=("concurrent", "sequential"),
        default="concurrent",
        help="concurrent: both sides at once (paired slots); sequential: A then B (for comparison)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise significance level")
    p.add_argument("--min-effect", type=float, default=0.05, help="smallest relative shift that counts")
    p.add_argument("--correction", choices=("holm", "bh"), default="holm", help="across metrics")
    p.add_argument("--min-samples", type=int, default=20, help="per side and metric")
    p.add_argument(
        "--start-delay",
        type=duration_arg,
        default=5.0,
        help="concurrent open loop: both schedules start this long after launch, at the same moment",
    )
    p.add_argument("--name", default="ab")
    p.add_argument("--ab-out", default="reports/ab", help="parent folder of A/B folders")
    return p


def side_config(
    rest: list[str], url: str, folder: Path, ab_id: str, side: str, parser: argparse.ArgumentParser
) -> tuple[argparse.Namespace, RunConfig]:
    args = parser.parse_args([*rest, "--url", url, "--out", str(folder), "--name", f"{ab_id}-{side}"])
    config = cli.make_config(args, parser)
    config.run_id, config.run_dir = f"{ab_id}-{side}", str(folder / side)
    return args, config


def run_sides(
    sides: dict[str, tuple[argparse.Namespace, RunConfig]], parser: argparse.ArgumentParser, order: str
) -> dict[str, Path]:
    """Run each side's load test; concurrently (one thread per side) or one after the other."""
    done: dict[str, Path] = {}
    errors: dict[str, BaseException] = {}

    def one(side: str) -> None:
        args, config = sides[side]
        try:
            done[side] = cli.run_load(args, parser, config)[0]
        except BaseException as exc:  # reported in the main thread
            errors[side] = exc

    if order == "sequential":
        for side in sides:
            one(side)
    else:
        threads = [threading.Thread(target=one, args=(s,), daemon=True) for s in sides]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    if errors:
        side, exc = next(iter(errors.items()))
        raise RuntimeError(f"side {side}: {type(exc).__name__}: {exc}")
    return done


def check_flags(args: argparse.Namespace, rest: list[str], parser: argparse.ArgumentParser) -> None:
    """parser.error (exit 2) on a flag tollgate ab sets itself or a value out of range."""
    for flag in SET_BY_AB:
        if flag in rest:
            parser.error(f"{flag} is set by tollgate ab (use --url-a/--url-b, --ab-out, --name); remove it")
    if not 0 < args.alpha < 1:
        parser.error(f"--alpha {args.alpha} must be between 0 and 1")
    if args.min_samples < 1:
        parser.error(f"--min-samples {args.min_samples} must be at least 1")
    if not 0 <= args.start_delay <= MAX_START_DELAY_S:
        # each side's run ends at most 30 s (the open-loop grace) after its --duration; a later start is cut
        parser.error(f"--start-delay must be between 0 and {MAX_START_DELAY_S:g}s")


def unreachable(sides: dict[str, tuple[argparse.Namespace, RunConfig]]) -> str | None:
    """Why the A/B cannot start when a side's server does not answer, else None."""
    for side, (_, config) in sides.items():
        info = cli.server_identity(config.url, config.api_key)
        if not info["reachable"]:
            return f"server {side.upper()} at {config.url} is unreachable: {info.get('error')}"
    return None


def ab_result(
    args: argparse.Namespace, ab_id: str, dirs: dict[str, Path], runs: dict[str, Any], paired: bool
) -> dict[str, Any]:
    """ab.json (tollgate.contracts.release) from the two sides' finished runs."""
    from release.ab import compare_runs, verdict

    metrics = compare_runs(
        runs["a"].frame,
        runs["b"].frame,
        args.alpha,
        args.min_effect,
        args.correction,
        args.min_samples,
        paired,
    )
    decided, reasons = verdict(metrics, {s: r.summary for s, r in runs.items()})
    return {
        "schema_version": RELEASE_SCHEMA_VERSION,
        "ab_id": ab_id,
        "order": args.order,
        "paired": paired,
        "url_a": args.url_a,
        "url_b": args.url_b,
        "run_a": str(dirs["a"]),
        "run_b": str(dirs["b"]),
        "alpha": args.alpha,
        "min_effect": args.min_effect,
        "correction": args.correction,
        "metrics": metrics,
        "verdict": decided,
        "exit_code": AB_EXIT[decided],
        "reasons": reasons,
        "created_at": time.time(),
    }


def main(argv: list[str]) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    # imported after parsing: scipy/statsmodels/pandas take ~2 s, `--help` should not wait for them
    from loadgen.gate import InvalidRun, load_run

    check_flags(args, rest, parser)
    ab_id = f"{args.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    folder = Path(args.ab_out).resolve() / ab_id
    problem = cli.check_run_dir(folder, args.ab_out, "--ab-out")
    if problem:
        print(f"tollgate ab: {problem}", file=sys.stderr)
        return 2
    load_parser = cli.build_parser()
    load_parser.prog = "tollgate ab"
    sides = {
        s: side_config(rest, url, folder, ab_id, s, load_parser)
        for s, url in (("a", args.url_a), ("b", args.url_b))
    }
    problem = unreachable(sides)
    if problem:
        print(f"tollgate ab: {problem}", file=sys.stderr)
        return 2
    if args.order == "concurrent":
        start_at = time.time() + args.start_delay  # both generators' schedules share one zero
        for _, config in sides.values():
            config.start_at = start_at
    try:
        dirs = run_sides(sides, load_parser, args.order)
    except (RuntimeError, OSError) as exc:
        print(f"tollgate ab: {exc}", file=sys.stderr)
        return 2
    try:
        runs = {s: load_run(d, strict=False) for s, d in dirs.items()}
    except InvalidRun as exc:
        print(f"tollgate ab: {exc}", file=sys.stderr)
        return 2
    paired = args.order == "concurrent" and sides["a"][1].rate is not None
    result = ab_result(args, ab_id, dirs, runs, paired)
    write_json_atomic(folder / "ab.json", result, default=numpy_scalars, allow_nan=False)
    print_table(result)
    print(folder)
    return result["exit_code"]


def print_table(result: dict[str, Any]) -> None:
    columns = ("metric", "A median", "B median", "shift B-A", "delta / r", "p (adj.)", "favours")
    rows = (
        (
            name,
            number(r.get("median_a")),
            number(r.get("median_b")),
            share(r.get("relative_shift")),
            signed(r.get("cliffs_delta", r.get("rank_biserial"))),
            number(r.get("p_adjusted")),
            (r.get("better") or "-").upper(),
        )
        for name, r in result["metrics"].items()
    )
    title = f"A/B {result['ab_id']} ({result['order']}): {result['verdict']}"
    print_metric_table(title, columns, 1, rows, [f"  {reason}" for reason in result["reasons"]])

"""`tollgate drift profile|check|watch`: the flags, and which module runs each command.

    tollgate drift profile DATA [DATA ...] -o profile.json
    tollgate drift check --profile profile.json --live capture.jsonl [--window 1h] [--evidently-report out.html]
    tollgate drift watch --profile profile.json --live capture.jsonl --interval 60 --window 1h --port 9109

check exits 0 (no drift), 1 (drift) or 2 (bad input: unreadable profile or live data, bad flags).
Imports run one way: cli -> watch -> pipeline -> check; nothing imports the cli back.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from drift.exit_codes import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK
from drift.sequential import SequentialDetector
from tollgate.contracts.durations import duration_type
from tollgate.contracts.files import write_json_atomic

# The pipeline (pandas, scipy, pyarrow: ~2 s of imports) is imported where a command runs, so that
# `tollgate drift check --help` and `drift watch --help` answer at once.
if TYPE_CHECKING:
    from drift.features import Features

__all__ = ["EXIT_BAD_INPUT", "EXIT_DRIFT", "EXIT_OK", "build_parser", "main", "parse_duration"]
parse_duration = duration_type(positive=True)


def add_check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True, help="reference profile from `tollgate drift profile`")
    p.add_argument("--live", required=True, help="capture log, OpenAI request-body JSONL, CSV or parquet")
    p.add_argument("--window", type=parse_duration, help="only the last DURATION of the live data (1h, 30m)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--correction", choices=("bh", "bonferroni"), default="bh", help="multiple-testing correction"
    )
    p.add_argument(
        "--method", action="append", default=[], metavar="FEATURE=METHOD", help="per-feature method"
    )
    p.add_argument(
        "--min-effect", action="append", default=[], metavar="FEATURE=X", help="per-feature minimum effect"
    )
    p.add_argument("--permutations", type=int, default=500, help="MMD permutations (default 500)")
    p.add_argument(
        "--out", default="reports/drift", help="folder for <check_id>.json (default reports/drift)"
    )
    p.add_argument("--evidently-report", help="also write Evidently's DataDriftPreset HTML report here")
    p.add_argument(
        "--embeddings", action="store_true", help="sentence embeddings (extra) instead of prompt sketches"
    )


def _reporting(chunks: Iterator[Features]) -> Iterator[Features]:
    for chunk in chunks:
        for warning in chunk.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        yield chunk


def cmd_profile(args: argparse.Namespace) -> int:
    from drift.embeddings import EmbeddingsUnavailable
    from drift.features import FeatureError, iter_feature_chunks
    from drift.profile import RESERVOIR_CAPACITY, ProfileError, build_profile, save_profile

    reservoir = RESERVOIR_CAPACITY if args.reservoir is None else args.reservoir
    profile = None
    try:
        for path in args.data:
            chunks = _reporting(iter_feature_chunks(path, embed=args.embeddings))
            part = build_profile(chunks, reservoir, args.seed, source=str(path))
            profile = part if profile is None else profile.merge(part, args.seed)
    except (FeatureError, ProfileError, EmbeddingsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    assert profile is not None
    profile.source = ", ".join(args.data)
    try:
        out = save_profile(profile, args.output)
    except OSError as exc:
        print(
            f"error: cannot write the profile to {args.output}: {exc.strerror or exc}; choose a writable -o path",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    kinds = profile.kinds()
    print(f"profile of {profile.n_rows} rows, {len(kinds)} features ({', '.join(kinds)}) -> {out}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    seq = None
    state_path = Path(args.sequential_state) if args.sequential_state else None
    if state_path is not None:
        try:
            seq = (
                SequentialDetector.from_state(json.loads(state_path.read_text()))
                if state_path.exists()
                else SequentialDetector(arl=args.arl)
            )
        except (ValueError, KeyError, TypeError) as exc:
            print(
                f"error: {state_path}: unreadable sequential state ({exc}); delete it to start over",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    from drift.pipeline import check_once

    code = check_once(args, seq)
    if seq is not None and code != EXIT_BAD_INPUT:
        write_json_atomic(state_path, seq.state(), indent=None)
    return code


def add_watch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval", type=parse_duration, default=60.0, help="seconds between checks (default 60s)"
    )
    p.add_argument("--host", default="127.0.0.1", help="metrics address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9109, help="metrics port (0: any free port; default 9109)")
    p.add_argument("--per-window", action="store_true", help="alarm on each window's own decision")
    p.add_argument("--arl", type=float, default=1000.0, help="sequential: mean windows between false alarms")
    p.add_argument("--max-checks", type=int, default=0, help="stop after N checks (0: run until stopped)")
    deprecated = "deprecated: alerts come from `tollgate monitor --target` on the watch's metrics"
    p.add_argument("--slack-webhook", help=f"Slack incoming webhook URL ({deprecated})")
    p.add_argument("--webhook", help=f"generic webhook URL ({deprecated})")
    p.add_argument("--store", default="reports/drift/notify.db", help=f"store of those alerts ({deprecated})")


def build_parser() -> argparse.ArgumentParser:
    """The whole parser; it imports nothing heavy, so every `--help` answers at once."""
    parser = argparse.ArgumentParser(prog="tollgate drift", description="reference profiles and drift checks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile", help="build a reference profile from training/evaluation data")
    p.add_argument(
        "data", nargs="+", help="JSONL prompts (chat or text), request bodies, capture log, CSV, parquet"
    )
    p.add_argument("-o", "--output", required=True, help="profile.json to write")
    p.add_argument("--reservoir", type=int, default=None, help="rows kept as a sample (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--embeddings", action="store_true", help="sentence embeddings (extra) instead of prompt sketches"
    )
    c = sub.add_parser(
        "check", help="check live requests against a profile (exit 0 ok, 1 drift, 2 bad input)"
    )
    add_check_options(c)
    c.add_argument("--sequential-state", help="JSON file keeping the sequential detector between runs (cron)")
    c.add_argument("--arl", type=float, default=1000.0, help="sequential: mean windows between false alarms")
    w = sub.add_parser("watch", help="check a growing capture log on a schedule; gauges and alerts")
    add_check_options(w)
    add_watch_options(w)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_BAD_INPUT
    if args.command == "profile":
        return cmd_profile(args)
    if args.command == "check":
        return cmd_check(args)
    from drift.watch import run_watch

    return run_watch(args)

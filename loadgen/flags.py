"""`tollgate load`'s flags: the parser and the value types of its options.

Light on purpose (argparse, re, loadgen.shapes' names and the duration grammar only): `tollgate load --help` builds this
parser and nothing else. The flags become a RunConfig in loadgen/configure.py.
"""

from __future__ import annotations

import argparse
import math

from loadgen.shapes import SHAPES
from tollgate.contracts.durations import duration_arg as parse_duration


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate load", description="Load an OpenAI-compatible server with Locust."
    )
    p.add_argument("--url", help="server base URL, e.g. http://127.0.0.1:8000 (env TOLLGATE_URL)")
    p.add_argument("--api-key", help="bearer token (env OPENAI_API_KEY); never written to the run folder")
    p.add_argument("--model", help="model name (default: the first of /v1/models)")
    p.add_argument("--endpoint", choices=("chat", "completions"), default="chat")
    p.add_argument(
        "--no-stream", action="store_true", help="non-streaming requests (TTFT = E2E, no ITL/TPOT)"
    )
    load = p.add_mutually_exclusive_group()
    load.add_argument("--users", type=positive_int, help="closed loop: N concurrent users")
    load.add_argument(
        "--rate", type=positive_float, help="open loop: total target requests/s (all processes)"
    )
    p.add_argument("--arrival", choices=("poisson", "gamma"), default="poisson")
    p.add_argument(
        "--burstiness", type=positive_float, default=1.0, help="gamma shape (vLLM convention); 1 = Poisson"
    )
    p.add_argument(
        "--max-concurrency", type=positive_int, help="open loop: user pool size (default max(64, 4 x rate))"
    )
    p.add_argument(
        "--spawn-rate", type=positive_float, help="users started per second (default: all at once)"
    )
    p.add_argument("--shape", choices=SHAPES, help="closed-loop load shape over --duration")
    p.add_argument("--shape-opt", action="append", default=[], metavar="KEY=VALUE", help="shape parameter")
    p.add_argument("--input-tokens", default="128", metavar="DIST")
    p.add_argument(
        "--output-tokens", default=None, metavar="DIST", help="default 128 (dataset: its reply lengths)"
    )
    p.add_argument(
        "--tokenizer",
        metavar="DIR|tokenizer.json",
        help="size prompts in this tokenizer's tokens (local files only); default: the server's POST /tokenize "
        "when it has one, else words",
    )
    p.add_argument("--dataset", help="OpenAI chat JSONL (.jsonl) or ShareGPT JSON (.json)")
    p.add_argument(
        "--scenario",
        help="synthetic | shared-prefix | long-context | dataset | multi-turn, or NAME:W,NAME:W mix",
    )
    p.add_argument(
        "--turns", default="3", metavar="DIST", help="multi-turn: user turns per conversation (default 3)"
    )
    p.add_argument(
        "--prefix-count", type=positive_int, default=4, help="shared-prefix: distinct system prompts"
    )
    p.add_argument(
        "--prefix-tokens",
        type=positive_int,
        default=512,
        help="shared-prefix: tokens (words without a tokenizer) per system prompt",
    )
    p.add_argument(
        "--context-tokens",
        type=positive_int,
        default=4000,
        help="long-context: tokens (words without a tokenizer) of context",
    )
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=parse_duration, help="run length, e.g. 60s")
    stop.add_argument("--requests", type=positive_int, help="total requests over all processes")
    p.add_argument(
        "--processes", type=positive_int, default=1, help="Locust worker processes on this machine"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="run name (prefix of the run id)")
    p.add_argument("--out", default="reports/runs", help="parent folder of run folders")
    p.add_argument(
        "--recover",
        metavar="RUN_DIR",
        help="write the summary of a run folder whose generator was killed with no summary.json "
        "(from its requests.partial.jsonl), then exit",
    )
    p.add_argument("--timeout", type=parse_duration, default=600.0, help="per-request read timeout")
    p.add_argument(
        "--ignore-eos", action="store_true", help="send ignore_eos (vLLM): always produce max_tokens"
    )
    p.add_argument("--temperature", type=float)
    p.add_argument("--slo", help="SLO TOML whose [goodput] table defines goodput for summary.json")
    dist = p.add_argument_group("distributed (Locust master/worker)")
    dist.add_argument("--master", action="store_true", help="run as master; workers join from other machines")
    dist.add_argument("--expect-workers", type=positive_int, help="master: workers to wait for")
    dist.add_argument("--worker", action="store_true", help="run as a worker of a remote master")
    dist.add_argument("--master-host", default="127.0.0.1")
    dist.add_argument("--master-port", type=positive_int, default=5557)
    p.add_argument("--web", action="store_true", help="also serve Locust's web UI while the run lasts")
    p.add_argument("--web-port", type=positive_int, default=8089)
    p.add_argument("--loglevel", default="WARNING")
    return p

"""`tollgate load`'s flags -> the run's RunConfig, every flag checked before any request is sent."""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

from loadgen.config import RunConfig
from loadgen.shapes import ShapeError, parse_shape


def make_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> RunConfig:
    """Check the flags together (a bad one exits 2 through `parser.error`) and build the run's config."""
    # the workload modules (numpy: ~0.1 s) load here, not at import, so `--help` answers at once
    from loadgen.conversations import load_conversations
    from loadgen.tokens import LocalTokenizer
    from loadgen.workloads import WorkloadError, load_dataset, parse_dist, parse_scenario

    url = args.url or os.environ.get("TOLLGATE_URL")
    if not url:
        parser.error("--url is required (or set TOLLGATE_URL)")
    if not re.match(r"^https?://[^/\s]+", url):
        parser.error(f"--url '{url}' must look like http://HOST:PORT")
    if args.users is None and args.rate is None:
        parser.error("choose the load: --users N (closed loop) or --rate R (open loop)")
    if args.duration is None and args.requests is None:
        parser.error("choose when to stop: --duration 60s or --requests N")
    if args.master and args.processes > 1:
        parser.error("--master runs workers elsewhere; drop --processes (or drop --master)")
    try:
        parse_dist(args.input_tokens, "--input-tokens")
        if args.output_tokens:
            parse_dist(args.output_tokens, "--output-tokens")
        scenario = args.scenario or ("dataset" if args.dataset else "synthetic")
        scenarios = parse_scenario(scenario)
        if "dataset" in scenarios and not args.dataset:
            parser.error("--scenario dataset needs --dataset FILE")
        parse_dist(args.turns, "--turns")
        if "multi-turn" in scenarios and args.endpoint != "chat":
            parser.error("--scenario multi-turn sends chat histories; use --endpoint chat")
        if "multi-turn" in scenarios and args.dataset:
            load_conversations(args.dataset)
        if args.dataset:
            load_dataset(args.dataset)
        if args.tokenizer:
            LocalTokenizer(args.tokenizer)  # a bad path is a flag error, before any request
        shape = parse_shape(args.shape, args.users, args.duration, args.shape_opt) if args.shape else None
        goodput = load_goodput(args.slo) if args.slo else {}
    except (WorkloadError, ShapeError, ValueError) as exc:
        parser.error(str(exc))
    workers = args.expect_workers if args.master else args.processes
    run_id = f"{args.name or 'run'}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    pool = args.max_concurrency or (min(2000, max(64, math.ceil(4 * args.rate))) if args.rate else None)
    return RunConfig(
        run_id=run_id,
        name=args.name,
        run_dir=str(Path(args.out).resolve() / run_id),
        url=url.rstrip("/"),
        api_key=args.api_key or os.environ.get("OPENAI_API_KEY") or "",
        model=args.model,
        endpoint=args.endpoint,
        stream=not args.no_stream,
        users=args.users,
        rate=args.rate,
        arrival=args.arrival,
        burstiness=args.burstiness if args.arrival == "gamma" else 1.0,
        max_concurrency=pool,
        shape=None
        if shape is None
        else {
            "kind": shape.kind,
            "users": shape.users,
            "duration_s": shape.duration_s,
            "options": shape.options,
        },
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens or "128",
        output_tokens_from_flag=args.output_tokens is not None,
        dataset=str(Path(args.dataset).resolve()) if args.dataset else None,
        scenario=scenario,
        turns=args.turns,
        prefix_count=args.prefix_count,
        prefix_tokens=args.prefix_tokens,
        context_tokens=args.context_tokens,
        duration_s=args.duration,
        requests=args.requests,
        processes=workers or 1,
        seed=args.seed,
        timeout_s=args.timeout,
        ignore_eos=args.ignore_eos,
        temperature=args.temperature,
        goodput_slo=goodput,
    )


def load_goodput(path: str) -> dict[str, float]:
    from loadgen.slo import SLOError, load_slo

    try:
        return load_slo(path).goodput
    except SLOError as exc:
        raise ValueError(str(exc)) from None

"""`tollgate load`: run a Locust load test against an OpenAI-compatible server.

Validates the flags, writes nothing but a config until Locust starts, runs Locust headless on
loadgen/locustfile.py (with `--processes N` Locust forks N workers under a master), and prints
the run folder's path as the last line. If Locust dies before writing the folder, a `failed`
(or `interrupted`) summary is written here so a run never ends without one.

The parts live one concept to a module: loadgen/flags.py (the parser), configure.py (flags ->
RunConfig, loadgen/config.py), probe.py (the server asked before the run), run_dir.py (the folder
proven writable, the config kept), locust_process.py (Locust's command line, signals, time limit),
recovery.py (a summary for a generator that died) and summary_table.py (the printed table). The
names below are the public API `tollgate sweep` and `tollgate ab` drive load through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loadgen.config import RunConfig
from loadgen.configure import make_config
from loadgen.early_stop import describe
from loadgen.flags import build_parser, parse_duration
from loadgen.locust_process import run_locust, run_worker
from loadgen.probe import server_identity
from loadgen.recovery import RECOVER_QUIET_S, ensure_summary, recover
from loadgen.run_dir import check_run_dir, write_error, write_run_config
from loadgen.summary_table import print_summary
from tollgate.contracts.run_folder import STOPPED_EARLY

__all__ = [
    "RECOVER_QUIET_S",
    "RunConfig",
    "build_parser",
    "check_run_dir",
    "ensure_summary",
    "main",
    "make_config",
    "parse_duration",
    "run_load",
    "server_identity",
]


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    if args.recover:
        return recover(Path(args.recover))
    config = make_config(args, parser)
    problem = check_run_dir(Path(config.run_dir), args.out)
    if problem:
        print(f"tollgate load: {problem}", file=sys.stderr)
        return 2
    try:
        run_dir, summary = run_load(args, parser, config)
    except OSError as exc:  # the run folder could not be written (disk full, permissions)
        print(f"tollgate load: {write_error(Path(config.run_dir), exc)}", file=sys.stderr)
        return 1
    print_summary(summary)
    if summary.get(STOPPED_EARLY):
        print(describe(summary[STOPPED_EARLY]), file=sys.stderr)
    print(run_dir)
    if summary.get(STOPPED_EARLY):
        return 2
    return {"complete": 0, "interrupted": 130}.get(summary.get("status"), 1)


def run_load(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    config: RunConfig | dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run one load test from parsed flags; returns the run folder and its summary.

    `config` may also be the dict `make_config` returned before it became a `RunConfig` (scripts
    written against that keep working)."""
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    config = config or make_config(args, parser)
    config.server = server_identity(config.url, config.api_key)
    config.model = config.model or (config.server["models"] or ["default"])[0]
    if config.tokens is None:
        from loadgen.tokens import resolve

        tokenizer = getattr(args, "tokenizer", None)
        config.tokens = resolve(config.url, tokenizer, config.api_key, config.model).to_config()
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_config(run_dir, config)
    code = run_locust(config, args)
    return run_dir, ensure_summary(run_dir, config, code)

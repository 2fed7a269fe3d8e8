"""What `tollgate canary`'s flags stand for: the checks on them, the source they name and the judgement
they set. `release.canary_cli` (the command) and `release.webhook` (its --serve mode) both build from here,
so neither imports the other."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from release.sources import PrometheusSource, StoreSource
from tollgate.contracts.durations import format_duration

if TYPE_CHECKING:  # release.canary's statistics (scipy, statsmodels) load when a judgement runs
    from release.canary import Judgement


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not 0 < args.confidence < 1:
        parser.error(f"--confidence {args.confidence} must be between 0 and 1, e.g. 0.95")
    if not 0 <= args.marginal_score <= args.pass_score <= 100:
        parser.error("scores must satisfy 0 <= --marginal-score <= --pass-score <= 100")
    if args.min_samples < 2:
        parser.error("--min-samples must be at least 2")
    if args.serve and not hostport(args.serve):
        parser.error(f"--serve '{args.serve}' must be HOST:PORT, e.g. 0.0.0.0:8088")


def hostport(text: str) -> tuple[str, int] | None:
    """(host, port) of --serve HOST:PORT, or None when it is not one."""
    host, _, port = text.rpartition(":")
    return (host, int(port)) if host and port.isdigit() and 0 < int(port) < 65536 else None


def make_source(args: argparse.Namespace) -> StoreSource | PrometheusSource:
    if args.prometheus:
        return PrometheusSource(args.prometheus, args.step, format_duration(args.rate_window))
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

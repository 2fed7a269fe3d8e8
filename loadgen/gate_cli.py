"""`tollgate gate --slo slo.toml RUN [--baseline RUN]`: pass (0), fail (1), invalid run or SLO file (2).

Prints a table of every check and writes RUN/gate.json (tollgate.contracts.run_folder.GATE_FIELDS).
With --candidate-url and --baseline-url it also compares the two servers' outputs on a fixed prompt
set (loadgen/quality.py) and gates them on the SLO file's [quality] thresholds; gate.json then
carries the per-prompt figures under "quality".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tollgate.contracts.run_folder import RUN_SCHEMA_VERSION

EXIT_PASS, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tollgate gate", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder (reports/runs/<run-id>)")
    parser.add_argument("--slo", required=True, help="SLO TOML file")
    parser.add_argument("--baseline", help="baseline run folder to compare against")
    parser.add_argument(
        "--allow-client-bound",
        action="store_true",
        help="gate a run even if the generator was the bottleneck",
    )
    parser.add_argument("--candidate-url", help="quality check: the candidate server (http://host:port)")
    parser.add_argument("--baseline-url", help="quality check: the baseline server to compare it with")
    parser.add_argument(
        "--api-key", default=os.environ.get("TOLLGATE_API_KEY") or None, help="bearer key for both servers"
    )
    args = parser.parse_args(argv)
    if bool(args.candidate_url) != bool(args.baseline_url):
        parser.error("the quality check needs both --candidate-url and --baseline-url")
    # imported after parsing: scipy and pandas take ~2 s, `--help` should not wait for them
    from loadgen.gate import InvalidRun, evaluate, load_run, quality_checks
    from loadgen.quality import PROMPTS, QualityError, quality_check, read_prompts
    from loadgen.report import write_json_atomic
    from loadgen.slo import SLOError, load_slo

    run_dir = Path(args.run)
    checks: list[dict[str, Any]] = []
    problem, verdict, code, baseline_id, quality = None, "invalid", EXIT_INVALID, None, None
    try:
        slo = load_slo(args.slo)
        if slo.quality is not None and not args.candidate_url:
            raise SLOError(
                f"{args.slo}:{slo.quality.line}: [quality] needs the servers to compare: "
                "give --candidate-url URL --baseline-url URL"
            )
        run = load_run(run_dir, args.allow_client_bound)
        baseline = load_run(args.baseline, args.allow_client_bound) if args.baseline else None
        baseline_id = baseline.summary["run_id"] if baseline else None
        checks = evaluate(run, slo, baseline)
        if args.candidate_url:
            q = slo.quality
            prompts = read_prompts(q.prompts) if q is not None and q.prompts else list(PROMPTS)
            max_tokens = q.max_tokens if q is not None else 64
            quality = quality_check(args.candidate_url, args.baseline_url, prompts, max_tokens, args.api_key)
            checks += quality_checks(quality, q)
        verdict, code = ("pass", EXIT_PASS) if all(c["passed"] for c in checks) else ("fail", EXIT_FAIL)
    except (SLOError, InvalidRun, QualityError) as exc:
        problem = str(exc)
        print(f"tollgate gate: {problem}", file=sys.stderr)
    if checks:
        print_table(checks, verdict)
    if (run_dir / "summary.json").is_file():
        result = {
            "schema_version": RUN_SCHEMA_VERSION,
            "run_id": run_dir.name,
            "verdict": verdict,
            "exit_code": code,
            "checks": checks,
            "baseline_run_id": baseline_id,
            "created_at": time.time(),
            "slo_file": str(args.slo),
            "problem": problem,
            "quality": quality,
        }
        write_json_atomic(run_dir / "gate.json", result)
    return code


def print_table(checks: list[dict[str, Any]], verdict: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"SLO gate: {verdict.upper()}")
    for column in ("check", "value", "limit", "baseline", "ratio", "significance", "result"):
        table.add_column(column, justify="left" if column in ("check", "result") else "right")
    for c in checks:
        limit = " ".join(f"{op} {v:g}" for op, v in (("<=", c["max"]), (">=", c["min"])) if v is not None)
        base = c.get("baseline") or {}
        significance = ""
        if "detail" in c:
            significance = c["detail"]
        elif "ci" in base:
            significance = f"CI [{base['ci'][0]:.3f}, {base['ci'][1]:.3f}]"
        elif "p_value" in base:
            significance = f"p = {base['p_value']:.3g}"
        table.add_row(
            c["name"],
            _fmt(c["value"]),
            limit,
            _fmt(base.get("baseline")),
            _fmt(base.get("ratio")),
            significance,
            ("PASS" if c["passed"] else "FAIL") + (f" ({base['decision']})" if base else ""),
        )
    Console().print(table)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

"""`tollgate gate --slo slo.toml RUN [--baseline RUN]`: pass (0), fail (1), invalid run or SLO file (2).

Prints a table of every check and writes RUN/gate.json (tollgate.contracts.run_folder.GATE_FIELDS).
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    # imported after parsing: scipy and pandas take ~2 s, `--help` should not wait for them
    from loadgen.gate import InvalidRun, evaluate, load_run
    from loadgen.report import write_json_atomic
    from loadgen.slo import SLOError, load_slo

    run_dir = Path(args.run)
    checks: list[dict[str, Any]] = []
    problem, verdict, code, baseline_id = None, "invalid", EXIT_INVALID, None
    try:
        slo = load_slo(args.slo)
        run = load_run(run_dir, args.allow_client_bound)
        baseline = load_run(args.baseline, args.allow_client_bound) if args.baseline else None
        baseline_id = baseline.summary["run_id"] if baseline else None
        checks = evaluate(run, slo, baseline)
        verdict, code = ("pass", EXIT_PASS) if all(c["passed"] for c in checks) else ("fail", EXIT_FAIL)
    except (SLOError, InvalidRun) as exc:
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
        if "ci" in base:
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

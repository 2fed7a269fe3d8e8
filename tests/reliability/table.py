"""`python -m tests.reliability.table [--report reports/reliability.json] [--doc docs/benchmarks.md]`

Renders the figures the reliability suite recorded as a Markdown table and puts it between the
`<!-- section:reliability -->` markers of docs/benchmarks.md (only that section changes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from tollgate.docgen import BENCHMARKS_MD, write_section

SECTION = "reliability"


def _grouped(tests: list[dict]) -> dict[str, list[dict]]:
    """Parametrized cases of one test function share a row."""
    groups: dict[str, list[dict]] = {}
    for t in tests:
        groups.setdefault(str(t.get("test", "?")).split("[", 1)[0], []).append(t)
    return groups


def render(report: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.get("created_at", 0)))
    totals = report.get("totals", {})
    lines = [
        "## Reliability and security suite",
        "",
        f"Produced by `pytest tests/reliability` ({when}; long variants: `make soak`), then "
        "`python -m tests.reliability.table`. Each row: what the test injects and what must hold.",
        "",
        "| test | injects / must hold | requests | faults | alerts lost | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, rows in _grouped(report.get("tests", [])).items():
        desc = rows[0].get("description", "").replace("|", "\\|")
        label = name + (" (soak)" if rows[0].get("soak") else "")
        cases = f" ({len(rows)} cases)" if len(rows) > 1 else ""
        outcomes = Counter(str(r.get("outcome", "?")) for r in rows)
        result = ", ".join(f"{n} {o}" if len(rows) > 1 else o for o, n in outcomes.items())
        sums = [sum(int(r.get(k, 0)) for r in rows) for k in ("requests", "faults", "alerts_lost")]
        lines.append(f"| `{label}`{cases} | {desc} | {sums[0]} | {sums[1]} | {sums[2]} | {result} |")
    lines.append(
        f"| **total** | {report.get('passed', 0)} passed, {report.get('failed', 0)} failed, "
        f"{report.get('xfailed', 0)} known defects | "
        f"{totals.get('requests', 0)} | {totals.get('faults', 0)} | {totals.get('alerts_lost', 0)} | |"
    )
    defects = sorted({t["known_defect"] for t in report.get("tests", []) if t.get("known_defect")})
    if defects:
        lines += [
            "",
            "Known defects (strict xfail: the test turns red once the defect is fixed, so the marker goes):",
        ]
        lines += [f"- {d}" for d in defects]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.reliability.table", description=__doc__.split("\n")[2])
    p.add_argument("--report", type=Path, default=Path("reports/reliability.json"))
    p.add_argument(
        "--doc",
        "--readme",  # its old name (the table lived in README.md); still accepted
        dest="doc",
        type=Path,
        default=BENCHMARKS_MD,
        help="Markdown file with the section markers (default docs/benchmarks.md); --readme is the old name",
    )
    args = p.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
    except FileNotFoundError:
        print(f"{args.report}: not found; run `pytest tests/reliability` first", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{args.report}: not valid JSON ({exc})", file=sys.stderr)
        return 2
    try:
        write_section(SECTION, render(report), args.doc)
    except (OSError, ValueError) as exc:
        print(f"{args.doc}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the reliability table ({len(report.get('tests', []))} tests) into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

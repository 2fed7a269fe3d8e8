"""`python -m bench startup [--runs=N] [--against=DIR]`: how fast the CLI answers `--help`.

Each command's `--help` is run N times (default 7) in a fresh interpreter, median wall time reported next to
the interpreter's own start-up (`python -c pass`, the floor) measured in the same run, interleaved. With
`--against=DIR` (another checkout, e.g. main before a change) the same commands run from DIR too, so the
table shows before and after side by side. Target: every `--help` under 500 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import print_table, write_result

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 500.0
COMMANDS = (
    "--help",
    "gate --help",
    "drift check --help",
    "load --help",
    "sweep --help",
    "ab --help",
    "canary --help",
    "proxy --help",
    "monitor --help",
)


def _wall_ms(argv: list[str], root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    subprocess.run(argv, cwd=root, env=env, capture_output=True, timeout=120)
    return (time.perf_counter() - start) * 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another checkout to time the same commands from")
    args = parser.parse_args(argv)
    roots = {"this": REPO, **({"against": args.against.resolve()} if args.against else {})}
    cases = {"python -c pass": [sys.executable, "-c", "pass"]}
    cases.update({f"tollgate {c}": [sys.executable, "-m", "tollgate", *c.split()] for c in COMMANDS})
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.runs):  # interleaved: a noisy neighbour hits every case alike
        for name, cmd in cases.items():
            for side, root in roots.items():
                samples.setdefault((name, side), []).append(_wall_ms(cmd, root))
    medians = {key: statistics.median(values) for key, values in samples.items()}
    rows, results = [], []
    for name in cases:
        this = medians[(name, "this")]
        against = medians.get((name, "against"))
        ok = name.startswith("python") or this < TARGET_MS
        rows.append([name, this, *([against, against / this] if against else []), "ok" if ok else "SLOW"])
        results.append({"command": name, "median_ms": this, "against_median_ms": against, "ok": ok})
    columns = ["command", "median ms", *(["against ms", "against/this"] if args.against else []), "< 500 ms"]
    print_table(f"CLI start-up, median of {args.runs} runs", columns, rows)
    path = write_result(
        "startup",
        {"runs": args.runs, "against": str(args.against or ""), "target_ms": TARGET_MS, "results": results},
    )
    print(f"wrote {path}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

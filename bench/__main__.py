"""`python -m bench [name ...]`: run the benchmarks (all of them by default)."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("server", "loadgen", "monitors", "drift", "dashboard", "proxy", "release", "quant", "startup")


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
    extra = [a for a in argv if a.startswith("-")]
    failed = []
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark '{name}'; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"bench {name}: not written yet, skipped")
                continue
            raise
        start = time.perf_counter()
        rc = int(module.main(extra) or 0)
        print(f"bench {name}: exit {rc} in {time.perf_counter() - start:.0f}s")
        if rc:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

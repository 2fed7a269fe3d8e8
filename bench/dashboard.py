"""Dashboard page render times on a week of 5-second samples and a 100,000-request run.

Each page runs through Streamlit's AppTest (the script, its queries and the figures it sends;
the browser's drawing is not included). Side by side in the same run:
  baseline  no downsampling (raw tier, every point plotted) and the cache cleared before each run
  cold      downsampling on, cache cleared: the first visit after a restart or a data change
  warm      downsampling on, cache kept: every later visit and each auto-refresh
The target is every page under 2 s. `--quick` uses a day of samples and a 20,000-request run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

from bench.common import BENCH_DIR, print_table, write_result

VIEWS = Path(__file__).resolve().parents[1] / "dashboards" / "views"
CANDIDATE = "20260102-chat-candidate"  # the large run in the sample data
# label -> (page, query parameters, run the baseline?)
CASES = {
    "overview": ("overview", {}, True),
    "runs list": ("load_tests", {}, True),
    "run detail (largest run)": ("load_tests", {"run": CANDIDATE}, True),
    "compare two runs": ("load_tests", {"view": "Compare"}, True),
    "sweep curve": ("load_tests", {"view": "Sweeps"}, True),
    "live 1 h": ("live", {"range": "1 h"}, True),
    "live 24 h": ("live", {"range": "24 h"}, True),
    "live 7 d": ("live", {"range": "7 d"}, False),  # baseline: ~9M points, minutes
    "drift": ("drift", {}, True),
    "alerts": ("alerts", {}, True),
}
BUDGET_S = 2.0
BROKEN_DATA = ("query failed", "not a readable", "cannot be read", "not valid JSON", "skipped")


def _dataset(folder: Path, days: float, n_requests: int, n_targets: int) -> tuple[Path, float]:
    """Sample data for these sizes, generated once and reused (it takes a while for a week)."""
    from dashboards.sample_data import generate

    spec = {"days": days, "requests": n_requests, "targets": n_targets, "version": 2}
    marker = folder / "bench-spec.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return folder, 0.0
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    start = time.perf_counter()
    generate(folder, days, n_requests, n_targets)
    marker.write_text(json.dumps(spec))
    return folder, time.perf_counter() - start


def _timed_run(page: str, query: dict[str, str], downsample: bool, clear: bool, at=None):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboards.settings import DOWNSAMPLE_ENV

    os.environ[DOWNSAMPLE_ENV] = "1" if downsample else "0"
    if clear:
        st.cache_data.clear()
    if at is None:
        at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=600)
        for key, value in query.items():
            at.query_params[key] = value
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{page} {query}: {at.exception[0].value}")
    broken = [w.value for w in at.warning if any(k in w.value for k in BROKEN_DATA)]
    if broken:  # a page that only warned would look fast; the sample data is never damaged
        raise RuntimeError(f"{page} {query}: {broken[0]}")
    return elapsed, at


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a day of samples and a 20,000-request run")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per page and mode (median reported)"
    )
    parser.add_argument(
        "--data", type=Path, default=BENCH_DIR / "dashboard-data", help="where the sample data lives"
    )
    args, _ = parser.parse_known_args(argv)  # `python -m bench` passes every benchmark the same flags
    days, n_requests = (1.0, 20_000) if args.quick else (7.0, 100_000)
    from streamlit import logger as streamlit_logger

    streamlit_logger.set_log_level(logging.ERROR)  # AppTest outside a server logs a line per run

    from dashboards.settings import DATA_ENV

    root, gen_s = _dataset(args.data, days, n_requests, 3)
    os.environ[DATA_ENV] = str(root)
    _timed_run("load_tests", {"view": "Compare"}, True, True)  # import plotly/scipy/pyarrow once, untimed

    rows, results = [], {}
    for label, (page, query, with_baseline) in CASES.items():
        base = [_timed_run(page, query, False, True)[0] for _ in range(args.repeats)] if with_baseline else []
        cold = [_timed_run(page, query, True, True)[0] for _ in range(args.repeats)]
        _, at = _timed_run(page, query, True, False)
        warm = [_timed_run(page, query, True, False, at)[0] for _ in range(args.repeats)]
        med = {
            k: statistics.median(v) if v else None
            for k, v in (("baseline", base), ("cold", cold), ("warm", warm))
        }
        results[label] = {"median_s": med, "runs_s": {"baseline": base, "cold": cold, "warm": warm}}
        ratio = lambda a, b: f"{a / b:.1f}x" if a and b else "n/a"  # noqa: E731
        rows.append(
            [
                label,
                f"{med['baseline']:.2f}" if med["baseline"] else "skipped",
                f"{med['cold']:.2f}",
                f"{med['warm']:.3f}",
                ratio(med["baseline"], med["cold"]),
                ratio(med["baseline"], med["warm"]),
                "yes" if med["cold"] < BUDGET_S else "NO",
            ]
        )
    title = f"Dashboard render s, median of {args.repeats}: {days:g} d of 5 s samples x 3 targets, {n_requests:,}-request run"
    print_table(
        title, ["page", "baseline", "cold", "warm", "base/cold", "base/warm", f"cold<{BUDGET_S:g}s"], rows
    )
    path = write_result(
        "dashboard",
        {
            "days": days,
            "requests": n_requests,
            "targets": 3,
            "repeats": args.repeats,
            "data_generation_s": gen_s,
            "budget_s": BUDGET_S,
            "load_avg_1m_at_end": os.getloadavg()[
                0
            ],  # the 2 cores are shared; busy neighbours slow every column
            "pages": results,
            "all_under_budget": all(r["median_s"]["cold"] < BUDGET_S for r in results.values()),
        },
    )
    print(f"wrote {path}")
    return 0

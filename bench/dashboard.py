"""Dashboard page render times on a week of 5-second samples and a 100,000-request run.

Each page runs through Streamlit's AppTest (the script, its queries and the figures it sends;
the browser's drawing is not included). Side by side in the same run:
  baseline  no downsampling (raw tier, every point plotted) and the cache cleared before each run
  cold      downsampling on, cache cleared: the first visit after a restart or a data change
  warm      downsampling on, cache kept: every later visit and each auto-refresh
The target is every page under 2 s. `--quick` uses a day of samples and a 20,000-request run.

The scale-out path (`--prometheus-only`, and after the pages above when the Debian `prometheus`
package is installed): the Live page on a week of one reference server's raw 5 s metrics backfilled
into a real Prometheus (`promtool tsdb create-blocks-from openmetrics`, bench/prometheus_week.py),
side by side with the same page on an embedded store holding a week of 5 s samples for one target.
Written to reports/bench/dashboard-prometheus.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

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


def _measure_page(page: str, query: dict[str, str], with_baseline: bool, repeats: int) -> dict[str, Any]:
    """Render times of one page: baseline (no downsampling, cold cache), cold (caches cleared) and
    warm (the same AppTest again, caches kept); their medians and every run."""
    base = [_timed_run(page, query, False, True)[0] for _ in range(repeats)] if with_baseline else []
    cold = [_timed_run(page, query, True, True)[0] for _ in range(repeats)]
    _, at = _timed_run(page, query, True, False)
    warm = [_timed_run(page, query, True, False, at)[0] for _ in range(repeats)]
    med = {
        k: statistics.median(v) if v else None
        for k, v in (("baseline", base), ("cold", cold), ("warm", warm))
    }
    return {"median_s": med, "runs_s": {"baseline": base, "cold": cold, "warm": warm}}


def _table_row(label: str, med: dict[str, float | None]) -> list[str]:
    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.1f}x" if a and b else "n/a"

    return [
        label,
        f"{med['baseline']:.2f}" if med["baseline"] else "skipped",
        f"{med['cold']:.2f}",
        f"{med['warm']:.3f}",
        ratio(med["baseline"], med["cold"]),
        ratio(med["baseline"], med["warm"]),
        "yes" if med["cold"] < BUDGET_S else "NO",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a day of samples and a 20,000-request run")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per page and mode (median reported)"
    )
    parser.add_argument(
        "--data", type=Path, default=BENCH_DIR / "dashboard-data", help="where the sample data lives"
    )
    parser.add_argument(
        "--prometheus-only",
        action="store_true",
        help="only the Live page on Prometheus vs the embedded store",
    )
    args, _ = parser.parse_known_args(argv)  # `python -m bench` passes every benchmark the same flags
    days, n_requests = (1.0, 20_000) if args.quick else (7.0, 100_000)
    from streamlit import logger as streamlit_logger

    streamlit_logger.set_log_level(logging.ERROR)  # AppTest outside a server logs a line per run

    from dashboards.settings import DATA_ENV

    if args.prometheus_only:
        return prometheus_side_by_side(days, args.repeats, args.data.with_name("dashboard-prometheus"))
    root, gen_s = _dataset(args.data, days, n_requests, 3)
    os.environ[DATA_ENV] = str(root)
    _timed_run("load_tests", {"view": "Compare"}, True, True)  # import plotly/scipy/pyarrow once, untimed

    results = {
        label: _measure_page(page, query, with_baseline, args.repeats)
        for label, (page, query, with_baseline) in CASES.items()
    }
    rows = [_table_row(label, r["median_s"]) for label, r in results.items()]
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
    if shutil.which("prometheus") and shutil.which("promtool"):
        return prometheus_side_by_side(days, args.repeats, args.data.with_name("dashboard-prometheus"))
    print("bench dashboard: Prometheus side-by-side skipped (install the Debian `prometheus` package)")
    return 0


LIVE_RANGES = ("1 h", "24 h", "7 d")


def prometheus_side_by_side(days: float, repeats: int, folder: Path) -> int:
    """The Live page cold and warm on Prometheus (a backfilled week) and on the embedded store."""
    from bench.prometheus_week import WeekOfPrometheus
    from dashboards.sample_store import write_store
    from dashboards.settings import DATA_ENV, PROMETHEUS_ENV, WINDOW_ENV

    store_root, store_s = folder / "embedded", 0.0
    marker = store_root / "spec.json"
    if not marker.exists() or json.loads(marker.read_text()) != {"days": days}:
        shutil.rmtree(store_root, ignore_errors=True)
        start = time.perf_counter()
        write_store(store_root / "monitor.db", time.time() - 30, days, n_targets=1)
        store_s = time.perf_counter() - start
        marker.write_text(json.dumps({"days": days}))
    os.environ[DATA_ENV], os.environ[WINDOW_ENV] = str(store_root), "60"
    rows, results = [], {}
    with WeekOfPrometheus(folder / "prometheus", days) as prom:
        first = None
        for span in LIVE_RANGES:
            timings = {}
            for mode, url in (("embedded", None), ("prometheus", prom.url)):
                if url:
                    os.environ[PROMETHEUS_ENV] = url
                else:
                    os.environ.pop(PROMETHEUS_ENV, None)
                query = {"range": span}
                if first is None and url:  # the very first query after Prometheus started, uncached
                    first = _timed_run("live", query, True, True)[0]
                cold = [_timed_run("live", query, True, True)[0] for _ in range(repeats)]
                _, at = _timed_run("live", query, True, False)
                warm = [_timed_run("live", query, True, False, at)[0] for _ in range(repeats)]
                timings[mode] = {
                    "cold": statistics.median(cold),
                    "warm": statistics.median(warm),
                    "runs": [cold, warm],
                }
            os.environ.pop(PROMETHEUS_ENV, None)
            e, p = timings["embedded"], timings["prometheus"]
            results[f"live {span}"] = timings
            rows.append([f"live {span}", f"{e['cold']:.2f}", f"{p['cold']:.2f}", f"{p['cold'] / e['cold']:.1f}x",
                         f"{e['warm']:.3f}", f"{p['warm']:.3f}", "yes" if p["cold"] < BUDGET_S else "NO"])  # fmt: skip
        backfill_s, samples = prom.backfill_s, prom.samples
    print_table(
        f"Live page s, median of {repeats}: {days:g} d of 5 s samples, 1 target; embedded store vs Prometheus",
        ["page", "embedded cold", "prometheus cold", "prom/embedded", "embedded warm", "prometheus warm",
         f"prom cold<{BUDGET_S:g}s"],
        rows,
    )  # fmt: skip
    path = write_result(
        "dashboard-prometheus",
        {
            "days": days,
            "repeats": repeats,
            "samples_backfilled": samples,
            "backfill_s": backfill_s,
            "embedded_store_generation_s": store_s,
            "first_query_after_start_s": first,
            "budget_s": BUDGET_S,
            "load_avg_1m_at_end": os.getloadavg()[0],
            "pages": results,
            "prometheus_under_budget": all(r["prometheus"]["cold"] < BUDGET_S for r in results.values()),
        },
    )
    print(f"wrote {path}")
    return 0

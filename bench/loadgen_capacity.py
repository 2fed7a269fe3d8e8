"""Capacity of one generator process (old code beside new in the same run), --processes scaling, peers.

steps    the compiled mock (bench/fastmock: one chunk per write on absolute deadlines, so the mock is
         not the limit; the Python mock where no C compiler exists, and the table says so) streams 64
         replies of 256 tokens at gaps of 64 / rate; the offered chunk rate steps up until Tollgate's own
         validity flag trips (loadgen.validity, unchanged: CPU >= 90% of a core or loop lag p95 >= 10 ms).
         A step whose flag trips is run once more (a shared box's noise can trip it; both tries are in
         the JSON, the table shows the one that passed, if one did). With --against=DIR (another
         checkout, e.g. main before a change) the same steps run from DIR too, rate by rate
         interleaved, so both see the same box.
cpu      every Locust process of the generator (one, or a master and its workers) is sampled with psutil
         every 0.25 s; CPU and chunk arrivals are counted over the same steady window (1 s after the
         first send to 0.5 s before the duration ends), so CPU us per chunk includes the master and
         leaves out start-up and the final write. It is less load-sensitive than chunks/s on a shared box.
scaling  a paced rate both settings carry (PACED_RATE), --processes 1 vs 2: CPU us per chunk over all
         processes, efficiency = (us per chunk with 1) / (us per chunk with 2) (1.0: a second process
         costs nothing extra per chunk); then the highest offered rate with 2 processes. On a 2-core box
         that also runs the mock, 2x the throughput at full load is physically impossible: that row
         reports what the box allows.
peers    Tollgate, AIPerf and GuideLLM against one mock streaming as fast as it can (bench/peers_loadgen).

    python -m bench loadgen --only=capacity [--quick] [--against=DIR]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import print_table
from bench.fastmock import build as build_fast_mock
from bench.fastmock import start_fast_mock
from loadgen.mock_server import start_mock_server

REPO = Path(__file__).resolve().parents[1]
USERS, TOKENS = 64, 256
PACED_RATE = 16000
SAMPLE_S = 0.25
RATES = {True: [16000, 32000, 40000, 48000], False: [16000, 24000, 32000, 40000, 48000, 56000, 64000]}


def run_sampled(root: Path, out: Path, args: list[str], seconds: float) -> dict[str, Any]:
    """`tollgate load` from checkout `root`, its Locust processes' CPU sampled; the step's figures."""
    cmd = [sys.executable, "-m", "tollgate", "load", "--out", str(out), *args]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    samples = _sample_cpu(proc)
    run_dir = Path((proc.stdout.read() if proc.stdout else "").strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    frame = pd.read_parquet(run_dir / "requests.parquet", columns=["send_s", "chunk_ms"])
    start = float(frame["send_s"].min())
    window = (start + 1.0, start + seconds - 0.5)
    # a sample is empty when a process vanished while it was taken, or before Locust started
    inside = [s for s in samples if window[0] <= s[0] <= window[1] and s[1]] or [s for s in samples if s[1]]
    first, last = (inside[0], inside[-1]) if inside else ((0.0, {}), (0.0, {}))  # none: a failed run
    span = last[0] - first[0]
    cpu_s = sum(last[1][pid] - first[1][pid] for pid in last[1] if pid in first[1])
    arrivals = np.concatenate(
        [
            send + np.asarray(ms, dtype=float) / 1000.0
            for send, ms in zip(frame["send_s"], frame["chunk_ms"], strict=True)
        ]
        or [np.empty(0)]
    )
    chunks = int(((arrivals >= first[0]) & (arrivals < last[0])).sum())
    procs = list(summary["validity"]["processes"].values())
    return {
        "achieved_chunks_per_s": chunks / span if span > 0 else 0.0,
        "cpu_pct": 100.0 * cpu_s / span if span > 0 else 0.0,
        "cpu_us_per_chunk": cpu_s / chunks * 1e6 if chunks else None,
        "locust_processes": len(last[1]),
        "client_bound": summary["validity"]["client_bound"],
        "loop_lag_ms_p95": max((p.get("loop_lag_ms_p95") or 0 for p in procs), default=None),
        "ttft_p50_ms": summary["metrics"]["ttft_ms"]["p50"],
        "itl_p50_ms": summary["metrics"]["itl_ms"]["p50"],
        "itl_p99_ms": summary["metrics"]["itl_ms"]["p99"],
    }


def _sample_cpu(proc: subprocess.Popen) -> list[tuple[float, dict[int, float]]]:
    """(unix time, {pid: CPU seconds}) of the Locust processes under `proc`, every SAMPLE_S until it exits."""
    import psutil

    parent = psutil.Process(proc.pid)
    locust: dict[int, bool] = {}
    samples: list[tuple[float, dict[int, float]]] = []
    while proc.poll() is None:
        cpu: dict[int, float] = {}
        with contextlib.suppress(psutil.Error):
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.pid not in locust:
                        locust[child.pid] = "locust" in " ".join(child.cmdline())
                    if locust[child.pid]:
                        times = child.cpu_times()
                        cpu[child.pid] = times.user + times.system
        samples.append((time.time(), cpu))
        time.sleep(SAMPLE_S)
    return samples


@contextlib.contextmanager
def _mock(rate: int) -> Iterator[str]:
    itl_us = int(USERS * 1e6 / rate)
    if build_fast_mock() is not None:
        with start_fast_mock(5000, itl_us) as url:
            yield url
    else:
        with start_mock_server("--ttft-ms", "5", "--itl-ms", str(itl_us / 1000)) as mock:
            yield mock.url


def _step(root: Path, out: Path, rate: int, seconds: float, processes: int = 1) -> dict[str, Any]:
    args = f"--users {USERS} --duration {seconds}s --output-tokens {TOKENS} --input-tokens 8 --processes {processes}"
    for _ in range(2):  # once more when no chunk came through (e.g. Locust's master port was taken)
        with _mock(rate) as url:
            step = run_sampled(root, out, ["--url", url, *args.split()], seconds)
        if step["achieved_chunks_per_s"]:
            break
    step.update(offered_chunks_per_s=rate, processes=processes)
    return step


def capacity(out: Path, seconds: float, quick: bool, against: Path | None) -> dict[str, Any]:
    """Steps for this checkout (and `against`), scaling for this checkout, then the peers."""
    from bench.peers_loadgen import peers

    roots = {"this": REPO, **({"against": against.resolve()} if against else {})}
    steps: dict[str, list[dict[str, Any]]] = {name: [] for name in roots}
    for rate in RATES[quick]:
        running = [name for name in roots if not any(s["client_bound"] for s in steps[name])]
        if not running:
            break
        for name in running:
            step = _step(roots[name], out, rate, seconds)
            if step["client_bound"]:  # a shared box's noise can trip the flag once: measure it again
                retry = _step(roots[name], out, rate, seconds)
                step = {**retry, "first_try": step} if not retry["client_bound"] else {**step, "retry": retry}
            steps[name].append(step)
    top = max(s["offered_chunks_per_s"] for s in steps["this"])
    scaling = [_step(REPO, out, PACED_RATE, seconds, processes) for processes in (1, 2)]
    scaling.append(_step(REPO, out, top, seconds, 2))
    return {
        "mock": "compiled (bench/fastmock)"
        if build_fast_mock()
        else "python (loadgen/mock_server.py): may be the limit",
        "steps": steps,
        "scaling": scaling,
        "per_code": {name: _per_code(s) for name, s in steps.items()},
        "cpu_us_ratio_against_over_this": _cpu_ratio(steps),
        "scaling_efficiency": _efficiency(scaling),
        "peers": peers(out, 256 if quick else 1024),
    }


def _per_code(steps: list[dict[str, Any]]) -> dict[str, Any]:
    valid = [s for s in steps if not s["client_bound"]]
    best = max(valid, key=lambda s: s["achieved_chunks_per_s"]) if valid else None
    return {
        "max_valid_chunks_per_s": best["achieved_chunks_per_s"] if best else None,
        "at_offered": best["offered_chunks_per_s"] if best else None,
        "cpu_us_per_chunk_median": float(
            np.median([s["cpu_us_per_chunk"] for s in steps if s["cpu_us_per_chunk"]])
        ),
    }


def _cpu_ratio(steps: dict[str, list[dict[str, Any]]]) -> float | None:
    """Median over the rates both checkouts ran of (their CPU us per chunk) / (ours)."""
    if "against" not in steps:
        return None
    theirs = {s["offered_chunks_per_s"]: s["cpu_us_per_chunk"] for s in steps["against"]}
    ratios = [
        theirs[s["offered_chunks_per_s"]] / s["cpu_us_per_chunk"]
        for s in steps["this"]
        if theirs.get(s["offered_chunks_per_s"]) and s["cpu_us_per_chunk"]
    ]
    return float(np.median(ratios)) if ratios else None


def _efficiency(scaling: list[dict[str, Any]]) -> float | None:
    one, two = scaling[0]["cpu_us_per_chunk"], scaling[1]["cpu_us_per_chunk"]
    return one / two if one and two else None


def print_capacity(cap: dict[str, Any]) -> None:
    """The per-step table: what each checkout carried at each offered rate, at what CPU per chunk."""
    rows = []
    for name, steps in cap["steps"].items():
        rows += [_step_row(f"{name}: 1 process", s) for s in steps]
    rows += [_step_row(f"this: --processes {s['processes']}", s) for s in cap["scaling"]]
    print_table(
        f"loadgen capacity ({cap['mock']} mock, {USERS} streams x {TOKENS} tokens)",
        ["code / setting", "offered/s", "achieved/s", "CPU us/chunk", "CPU %", "lag p95 ms", "client_bound"],
        rows,
    )


def _step_row(label: str, s: dict[str, Any]) -> list[Any]:
    return [
        label,
        s["offered_chunks_per_s"],
        s["achieved_chunks_per_s"],
        s["cpu_us_per_chunk"],
        s["cpu_pct"],
        s["loop_lag_ms_p95"],
        s["client_bound"],
    ]


def capacity_rows(cap: dict[str, Any]) -> list[list[Any]]:
    """Summary rows for the loadgen table (check, baseline, measured, error or ratio, ok)."""
    this, against = cap["per_code"]["this"], cap["per_code"].get("against")
    rows = [
        [
            # ok: a step offering >= 40k/s was carried with client_bound false (a 40k/s step achieves
            # ~39.5k: each stream idles one TTFT between its requests)
            f"capacity: max chunks/s per process, client_bound false (offered {this['at_offered']}; "
            "baseline: --against)",
            against["max_valid_chunks_per_s"] if against else "-",
            this["max_valid_chunks_per_s"],
            (this["max_valid_chunks_per_s"] or 0) / against["max_valid_chunks_per_s"]
            if against and against["max_valid_chunks_per_s"]
            else "-",
            (this["at_offered"] or 0) >= 40000,
        ],
        [
            "capacity: CPU us per chunk, median over steps (ratio: baseline / this, same rates)",
            against["cpu_us_per_chunk_median"] if against else "-",
            this["cpu_us_per_chunk_median"],
            cap["cpu_us_ratio_against_over_this"] or "-",
            this["cpu_us_per_chunk_median"] < 22.0,
        ],
    ]
    one, two, top = cap["scaling"]
    rows += [
        [
            f"scaling: CPU us per chunk at {PACED_RATE}/s, --processes 1 vs 2 (efficiency)",
            one["cpu_us_per_chunk"],
            two["cpu_us_per_chunk"],
            cap["scaling_efficiency"],
            (cap["scaling_efficiency"] or 0) >= 0.8,
        ],
        [
            f"scaling: chunks/s at {top['offered_chunks_per_s']}/s offered, 1 process vs 2 (box-limited)",
            max(s["achieved_chunks_per_s"] for s in cap["steps"]["this"]),
            top["achieved_chunks_per_s"],
            top["achieved_chunks_per_s"] / max(s["achieved_chunks_per_s"] for s in cap["steps"]["this"]),
            not top["client_bound"],
        ],
    ]
    return rows

"""Load generator benchmark against the deterministic mock server (loadgen/mock_server.py).

fidelity   64 concurrent streams; Tollgate's TTFT/ITL p50/p99 vs the server's own record of when it
           wrote each chunk (the truth). Target: within 1 ms.
capacity   SSE chunks/s one generator process sustains (chunk rate stepped up) before its own
           validity flag (CPU / event-loop lag) trips.
open loop  100 req/s Poisson: achieved send rate vs the target and vs the realised schedule
           (target: within 2%); then a 1 s server stall with a 32-user pool: latency from the
           intended send time must include the stall (coordinated omission visible), while
           latency from the actual send hides it.

    python -m bench loadgen [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.common import print_table, write_result
from loadgen.mock_server import start_mock_server

REPO = Path(__file__).resolve().parents[1]


def run_load(out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    proc = subprocess.run(
        [sys.executable, "-m", "tollgate", "load", "--out", str(out), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary, pd.read_parquet(run_dir / "requests.parquet")


def fidelity(out: Path, seconds: float, userspace: bool = False) -> dict[str, Any]:
    """Per request, truth TTFT = server's first write - client's send stamp (one clock, one machine);
    truth ITL = gaps between the server's writes. Measured = Tollgate's own figures. The baseline
    stamps chunks in user space (when the greenlet reads them) instead of with kernel timestamps."""
    env = {"TOLLGATE_USERSPACE_TIMESTAMPS": "1"} if userspace else None
    with start_mock_server("--ttft-ms", "50", "--itl-ms", "20") as mock:
        args = f"--url {mock.url} --users 64 --duration {seconds}s --output-tokens 48 --input-tokens 32"
        summary, frame = run_load(out, *args.split(), env=env)
        writes = httpx.get(mock.url + "/mock/writes", timeout=30).json()
    done = frame[frame["ok"]]
    truth_ttft = np.array([(writes[r.request_id][0] - r.send_s) * 1000 for r in done.itertuples()])
    truth_itl = np.concatenate([np.diff(writes[rid]) * 1000 for rid in done["request_id"]])
    truth = {"ttft_ms": truth_ttft, "itl_ms": truth_itl}
    rows = {}
    for key in ("ttft_ms", "itl_ms"):
        for q, pct in (("p50", 50), ("p99", 99)):
            measured, real = (
                summary["metrics"][key][q],
                float(np.percentile(truth[key], pct, method="inverted_cdf")),
            )
            rows[f"{key[:-3]}_{q}"] = {"measured_ms": measured, "truth_ms": real, "error_ms": measured - real}
    validity = next(iter(summary["validity"]["processes"].values()), {})
    return {
        "points": rows,
        "client_bound": summary["validity"]["client_bound"],
        "validity": validity,
        "requests": len(done),
    }


def capacity(out: Path, seconds: float, rates: list[int]) -> dict[str, Any]:
    """Step the SSE chunk rate (32 streams, shorter gaps) until the generator's validity flag trips."""
    steps = []
    users = 32
    with start_mock_server("--ttft-ms", "5", "--itl-ms", "10") as mock:
        for rate in rates:
            itl_ms = users * 1000.0 / rate
            httpx.post(mock.url + "/mock/config", json={"itl_ms": itl_ms})
            tokens = max(10, int(500 / itl_ms))  # half-second streams, so most finish inside the step
            summary, frame = run_load(
                out,
                *f"--url {mock.url} --users {users} --duration {seconds}s --output-tokens {tokens} --input-tokens 8".split(),
            )
            achieved = float(frame.loc[frame["ok"], "n_chunks"].sum()) / summary["duration_s"]
            figures = next(iter(summary["validity"]["processes"].values()), {})
            steps.append({
                "target_chunks_per_s": rate,
                "achieved_chunks_per_s": achieved,
                "client_bound": summary["validity"]["client_bound"],
                "cpu_pct_mean": figures.get("cpu_pct_mean"),
                "loop_lag_ms_p95": figures.get("loop_lag_ms_p95"),
            })  # fmt: skip
            if summary["validity"]["client_bound"]:
                break
    valid = [s["achieved_chunks_per_s"] for s in steps if not s["client_bound"]]
    # CPU cost per chunk at the busiest step, and the rate that cost allows at the 90% CPU validity limit
    busiest = max(steps, key=lambda s: s["achieved_chunks_per_s"])
    cpu_us = (busiest["cpu_pct_mean"] or 0) / 100.0 / busiest["achieved_chunks_per_s"] * 1e6
    return {
        "steps": steps,
        "max_valid_chunks_per_s": max(valid) if valid else None,
        "cpu_us_per_chunk": cpu_us,
        "cpu_limited_chunks_per_s": 0.9e6 / cpu_us if cpu_us else None,
    }


def open_loop(out: Path, seconds: float) -> dict[str, Any]:
    with start_mock_server("--ttft-ms", "20", "--itl-ms", "2") as mock:
        summary, frame = run_load(
            out,
            *f"--url {mock.url} --rate 100 --duration {seconds}s --output-tokens 8 --input-tokens 16 --seed 1".split(),
        )
        intended = frame["intended_send_s"].dropna().to_numpy()
        schedule_rate = (len(intended) - 1) / (intended.max() - intended.min())
        achieved = summary["throughput"]["achieved_send_rate_per_s"]
        rate = {
            "target_per_s": 100.0,
            "schedule_per_s": schedule_rate,
            "achieved_per_s": achieved,
            "achieved_vs_target": achieved / 100.0,
            "achieved_vs_schedule": achieved / schedule_rate,
            "client_queue_p99_ms": summary["metrics"]["client_queue_ms"]["p99"],
            "client_bound": summary["validity"]["client_bound"],
        }
        stall_s, stall = 1.0, {}

        def inject() -> None:  # wait for steady traffic, then stall the server mid-run
            base = httpx.get(mock.url + "/mock/truth").json()["requests"]
            while httpx.get(mock.url + "/mock/truth").json()["requests"] < base + 200:
                time.sleep(0.05)
            stall.update(httpx.post(mock.url + "/mock/stall", json={"seconds": stall_s}).json())

        thread = threading.Thread(target=inject, daemon=True)
        thread.start()
        args = f"--url {mock.url} --rate 100 --duration {seconds}s --output-tokens 8 --input-tokens 16 --seed 2 --max-concurrency 32"
        summary2, frame2 = run_load(out, *args.split())
        thread.join(timeout=5)
    ok = frame2[frame2["ok"]]
    end = stall["until_unix"]
    hit = ok[(ok["intended_send_s"] >= end - stall_s) & (ok["intended_send_s"] < end - 0.05)]
    remaining = (end - hit["intended_send_s"]) * 1000.0  # the least latency a request intended then can see
    sent_at_once = hit[hit["client_queue_ms"] < 5]  # first token released exactly at the stall's end
    error = (sent_at_once["ttft_from_intended_ms"] - remaining[sent_at_once.index]).abs()
    queued = hit[hit["client_queue_ms"] >= 5]
    stalled = {
        "stall_s": stall_s,
        "requests_intended_in_stall": len(hit),
        "sent_at_once": len(sent_at_once),
        "sent_at_once_median_abs_error_ms": float(error.median()) if len(error) else None,
        "queued_in_client": len(queued),
        "below_remaining_stall": int((hit["ttft_from_intended_ms"] < remaining - 2.0).sum()),
        "queued_ttft_p50_from_send_ms": float(queued["ttft_ms"].median()) if len(queued) else None,
        "queued_ttft_p50_from_intended_ms": float(queued["ttft_from_intended_ms"].median())
        if len(queued)
        else None,
        "queued_client_queue_p50_ms": float(queued["client_queue_ms"].median()) if len(queued) else None,
        "client_bound": summary2["validity"]["client_bound"],
    }
    return {"rate": rate, "stall": stalled}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    seconds = 6.0 if quick else 12.0
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp:
        out = Path(tmp)
        fid = fidelity(out, seconds)
        fid_user = fidelity(out, seconds, userspace=True)
        cap = capacity(
            out,
            4.0 if quick else 6.0,
            [2000, 4000, 8000, 16000] if quick else [2000, 4000, 6000, 8000, 12000, 16000, 24000],
        )
        ol = open_loop(out, seconds)
    rows = [
        [f"fidelity {name}", p["truth_ms"], p["measured_ms"], p["error_ms"], abs(p["error_ms"]) <= 1.0]
        for name, p in fid["points"].items()
    ]
    rows += [
        [
            f"baseline (user-space stamps) {name}",
            p["truth_ms"],
            p["measured_ms"],
            p["error_ms"],
            abs(p["error_ms"]) <= 1.0,
        ]
        for name, p in fid_user["points"].items()
    ]
    rows += [
        [
            f"capacity @ {s['target_chunks_per_s']} chunks/s",
            s["target_chunks_per_s"],
            s["achieved_chunks_per_s"],
            s["achieved_chunks_per_s"] / s["target_chunks_per_s"],
            not s["client_bound"],
        ]
        for s in cap["steps"]
    ]
    rows.append(
        [
            "capacity: CPU us per chunk -> chunks/s at 90% CPU",
            "-",
            cap["cpu_us_per_chunk"],
            cap["cpu_limited_chunks_per_s"],
            "implied",
        ]
    )
    r = ol["rate"]
    rows.append(
        [
            "open loop rate vs target",
            r["target_per_s"],
            r["achieved_per_s"],
            r["achieved_vs_target"],
            abs(r["achieved_vs_target"] - 1) <= 0.02,
        ]
    )
    rows.append(
        [
            "open loop rate vs schedule",
            r["schedule_per_s"],
            r["achieved_per_s"],
            r["achieved_vs_schedule"],
            abs(r["achieved_vs_schedule"] - 1) <= 0.02,
        ]
    )
    st = ol["stall"]
    rows.append(
        [
            "stall, sent at once: TTFT from intended",
            "remaining stall",
            st["sent_at_once"],
            st["sent_at_once_median_abs_error_ms"],
            (st["sent_at_once_median_abs_error_ms"] or 99) <= 5,
        ]
    )
    rows.append(
        [
            "stall: requests below the remaining stall",
            0,
            st["below_remaining_stall"],
            "-",
            st["below_remaining_stall"] == 0,
        ]
    )
    rows.append(
        [
            "stall, queued: TTFT p50 from intended / from send",
            st["queued_ttft_p50_from_send_ms"],
            st["queued_ttft_p50_from_intended_ms"],
            "-",
            "CO visible",
        ]
    )
    print_table(
        "loadgen benchmark (baseline = truth / target)",
        ["check", "baseline", "measured", "error or ratio", "ok"],
        rows,
    )
    load = os.getloadavg()
    print(
        f"machine load average during the run: {load[0]:.1f} on {os.cpu_count()} cores (client_bound marks starved runs)"
    )
    path = write_result(
        "loadgen",
        {
            "fidelity": fid,
            "fidelity_userspace_baseline": fid_user,
            "capacity": cap,
            "open_loop": ol,
            "quick": quick,
            "load_average_1m": load[0],
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

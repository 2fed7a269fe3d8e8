"""Load generator benchmark against the deterministic mock server (loadgen/mock_server.py).

fidelity   64 concurrent streams (50 ms TTFT, 20 ms gaps), and 32 streams on issue 14's table mock
           (20 ms TTFT, 5 ms gaps, 64 tokens); Tollgate's TTFT/ITL p50/p99 vs the server's own record
           of when it wrote each chunk (the truth). Target: within 1 ms.
capacity   chunks/s one generator process carries with its validity flag (client_bound) false, CPU us
           per chunk, --processes scaling, and AIPerf and GuideLLM against the same compiled mock in the
           same run (bench/loadgen_capacity.py; --against=DIR runs the steps from another checkout too).
memory     RSS of the generator (Locust and its workers) over a long closed-loop run of 1-token
           requests: growth per 100k requests (rows go to disk, histograms are merged).
finalwrite peak RSS of the final write of 300k rows, streamed in batches vs all rows in one DataFrame
           (bench/loadgen_finalwrite.py; only with --only=finalwrite).
open loop  100 req/s Poisson: achieved send rate vs the target and vs the realised schedule
           (target: within 2%); then a 1 s server stall with a 32-user pool: latency from the
           intended send time must include the stall (coordinated omission visible), while
           latency from the actual send hides it.

    python -m bench loadgen [--quick] [--only=SECTION,...] [--against=DIR]
"""

from __future__ import annotations

import contextlib
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

from bench.common import print_table, run_load, write_result
from bench.fastmock import build as build_fast_mock
from bench.fastmock import start_fast_mock
from bench.loadgen_capacity import capacity, capacity_rows, print_capacity
from bench.peers_loadgen import peer_rows, peers
from loadgen.mock_server import start_mock_server
from tollgate.contracts.run_folder import read_summary

REPO = Path(__file__).resolve().parents[1]


def fidelity(
    out: Path,
    seconds: float,
    userspace: bool = False,
    users: int = 64,
    ttft_ms: float = 50,
    itl_ms: float = 20,
    tokens: int = 48,
) -> dict[str, Any]:
    """Per request, truth TTFT = server's first write - client's send stamp (one clock, one machine);
    truth ITL = gaps between the server's writes. Measured = Tollgate's own figures. The baseline
    stamps chunks in user space (when the greenlet reads them) instead of with kernel timestamps."""
    env = {"TOLLGATE_USERSPACE_TIMESTAMPS": "1"} if userspace else None
    with start_mock_server("--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)) as mock:
        args = f"--url {mock.url} --users {users} --duration {seconds}s --output-tokens {tokens} --input-tokens 32"
        summary, frame = run_load(out, *args.split(), env=env)
        writes = httpx.get(mock.url + "/mock/writes", timeout=30).json()
        arrivals = httpx.get(mock.url + "/mock/arrivals", timeout=30).json()
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
    # TTFT tail: which side is it on? send stamp -> the mock's handler start (the client's write, the
    # mock's accept queue and loop backlog) vs handler start -> first write (what the mock records)
    before = np.array([(arrivals[r.request_id] - r.send_s) * 1000 for r in done.itertuples()])
    handler = np.array([(writes[r.request_id][0] - arrivals[r.request_id]) * 1000 for r in done.itertuples()])
    split = {
        name: {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))}
        for name, v in (("send_to_handler", before), ("handler_to_first_write", handler))
    }
    return {
        "ttft_split": split,
        "points": rows,
        "client_bound": summary["validity"]["client_bound"],
        "validity": validity,
        "requests": len(done),
    }


def memory(out: Path, requests: int) -> dict[str, Any]:
    """RSS of the whole generator (tollgate load, Locust, workers) sampled through a long run of
    1-token requests; growth between 20% and 80% of the run, per 100k requests (the start imports,
    the end writes requests.parquet and report.html: both are one-off, reported as the peak)."""
    import psutil

    compiled = build_fast_mock() is not None
    samples: list[tuple[float, float]] = []
    with start_fast_mock(1000, 100) if compiled else _python_mock_url() as url:
        cmd = [sys.executable, "-m", "tollgate", "load", "--out", str(out), "--url", url, "--users", "32"]
        cmd += ["--requests", str(requests), "--output-tokens", "1", "--input-tokens", "4"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        parent = psutil.Process(proc.pid)
        start = time.monotonic()
        while proc.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.name().startswith("python"))
                samples.append((time.monotonic() - start, rss / 2**20))
            except psutil.Error:
                pass
            time.sleep(0.5)
        run_dir = Path((proc.stdout.read() if proc.stdout else "").strip().splitlines()[-1])
    summary = read_summary(run_dir)
    span = samples[-1][0] if samples else 0.0
    steady = [(t, rss) for t, rss in samples if 0.2 * span <= t <= 0.8 * span]
    done = summary["requests"]["sent"]
    rate = done / summary["duration_s"] if summary["duration_s"] else 0.0
    elapsed = steady[-1][0] - steady[0][0] if len(steady) > 1 else 0.0
    growth = (steady[-1][1] - steady[0][1]) / (rate * elapsed) * 1e5 if elapsed and rate else None
    return {
        "requests": done,
        "duration_s": summary["duration_s"],
        "rss_mib_first": steady[0][1] if steady else None,
        "rss_mib_last": steady[-1][1] if steady else None,
        "rss_mib_peak": max(rss for _, rss in samples) if samples else None,
        "rss_growth_mib_per_100k_requests": growth,
        "client_bound": summary["validity"]["client_bound"],
    }


@contextlib.contextmanager
def _python_mock_url():
    with start_mock_server("--ttft-ms", "1", "--itl-ms", "0.1") as mock:
        yield mock.url


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


def tail_rows(fid: dict[str, Any]) -> list[list[Any]]:
    """Issue 14's TTFT tail question: Tollgate's TTFT p99 vs the truth, and where the truth's time goes."""
    p99 = fid["points"]["ttft_p99"]
    split = fid["ttft_split"]
    return [
        [
            "TTFT tail, 32 streams 50/10 ms mock: p99 vs truth",
            p99["truth_ms"],
            p99["measured_ms"],
            p99["error_ms"],
            abs(p99["error_ms"]) <= 1.0,
        ],
        [
            "  truth split p50 / p99: send -> mock handler start (client write, accept queue, loop backlog)",
            split["send_to_handler"]["p50_ms"],
            split["send_to_handler"]["p99_ms"],
            "-",
            "mock side",
        ],
        [
            "  truth split p50 / p99: handler start -> first write (the mock's own record)",
            split["handler_to_first_write"]["p50_ms"],
            split["handler_to_first_write"]["p99_ms"],
            "-",
            "-",
        ],
    ]


def memory_rows(mem: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            f"memory: RSS MiB over {mem['requests']} requests, growth per 100k",
            mem["rss_mib_first"],
            mem["rss_mib_last"],
            mem["rss_growth_mib_per_100k_requests"],
            (mem["rss_growth_mib_per_100k_requests"] or 0) < 50,
        ]
    ]


def run_sections(out: Path, only: list[str], quick: bool, seconds: float, against: Path | None = None) -> int:
    """Run the named sections alone (fidelity32, capacity, memory), print their rows, write loadgen-<names>.json."""
    results: dict[str, Any] = {}
    rows: list[list[Any]] = []
    if "fidelity32" in only:
        fid32 = results["fidelity_32_streams_table_mock"] = fidelity(
            out, seconds, users=32, ttft_ms=20, itl_ms=5, tokens=64
        )
        rows += [
            [
                f"32 streams, table mock {n}",
                p["truth_ms"],
                p["measured_ms"],
                p["error_ms"],
                abs(p["error_ms"]) <= 1.0,
            ]
            for n, p in fid32["points"].items()
        ]
    if "tail" in only:
        results["ttft_tail"] = fidelity(out, seconds, users=32, ttft_ms=50, itl_ms=10, tokens=48)
        rows += tail_rows(results["ttft_tail"])
    if "capacity" in only:
        results["capacity"] = capacity(out, 4.0 if quick else 6.0, quick, against)
        print_capacity(results["capacity"])
        rows += capacity_rows(results["capacity"]) + peer_rows(results["capacity"]["peers"])
    if "peers" in only:
        results["peers"] = peers(out, 256 if quick else 1024)
        rows += peer_rows(results["peers"])
    if "memory" in only:
        results["memory"] = memory(out, 20000 if quick else 100000)
        rows += memory_rows(results["memory"])
    if "finalwrite" in only:
        from bench.loadgen_finalwrite import finalwrite, finalwrite_rows

        results["finalwrite"] = finalwrite(out, 60_000 if quick else 300_000)
        rows += finalwrite_rows(results["finalwrite"])
    print_table(
        "loadgen benchmark, selected sections",
        ["check", "baseline", "measured", "error or ratio", "ok"],
        rows,
    )
    path = write_result(
        "loadgen-" + "-".join(only), {**results, "quick": quick, "load_average_1m": os.getloadavg()[0]}
    )
    print(f"wrote {path}")
    return 0


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    seconds = 6.0 if quick else 12.0
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp:
        out = Path(tmp)
        only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")), None)
        against = next((Path(a.split("=", 1)[1]) for a in argv if a.startswith("--against=")), None)
        if only:  # run some sections alone, e.g. --only=capacity,memory
            return run_sections(out, only, quick, seconds, against)
        fid = fidelity(out, seconds)
        fid_user = fidelity(out, seconds, userspace=True)
        fid32 = fidelity(out, seconds, users=32, ttft_ms=20, itl_ms=5, tokens=64)
        tail = fidelity(out, seconds, users=32, ttft_ms=50, itl_ms=10, tokens=48)
        cap = capacity(out, 4.0 if quick else 6.0, quick, against)
        mem = memory(out, 20000 if quick else 100000)
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
            f"32 streams, table mock {name}",
            p["truth_ms"],
            p["measured_ms"],
            p["error_ms"],
            abs(p["error_ms"]) <= 1.0,
        ]
        for name, p in fid32["points"].items()
    ]
    print_capacity(cap)
    rows += tail_rows(tail) + capacity_rows(cap) + peer_rows(cap["peers"]) + memory_rows(mem)
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
            "fidelity_32_streams_table_mock": fid32,
            "ttft_tail": tail,
            "capacity": cap,
            "memory": mem,
            "open_loop": ol,
            "quick": quick,
            "load_average_1m": load[0],
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

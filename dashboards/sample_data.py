"""Realistic fixture data that follows Tollgate's contracts, for tests, benchmarks and demos.

    python -m dashboards.sample_data OUT [--days 7] [--requests 100000] [--targets 3]

writes OUT/runs/<id>/ (summary.json, requests.parquet, gate.json), OUT/sweeps/<id>/sweep.json,
OUT/monitor.db (see sample_store) and OUT/drift/<ts>.json, the layout `tollgate dashboard --data OUT`
reads. Numbers are shaped like a real LLM server (log-normal latencies, load-dependent TTFT, a
diurnal request rate, an incident) so the plots look like what people will see in production.
Every file is written by the component that owns it (the load generator's run writer, the drift
check's result writer, the monitor's store and outbox), so the fixtures cannot drift from the
contracts. It sits above the components (like `tollgate demo`), which is why it may import them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dashboards.sample_drift import write_drift
from dashboards.sample_store import write_store
from loadgen.collector import Collector
from loadgen.report import write_run as write_run_folder
from loadgen.timeline import RequestRecord
from loadgen.validity import combine
from tollgate.contracts.files import write_json_atomic
from tollgate.contracts.run_folder import RUN_SCHEMA_VERSION

ERROR_REASONS = ("timeout", "http_503", "connection_reset", "http_429")


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, payload, indent=1)


def make_records(
    n: int, start: float, rate: float, seed: int, slowdown: float = 1.0, scenario: str = "chat"
) -> list[RequestRecord]:
    """Requests of an open-loop run at `rate` requests/s as the load generator records them:
    log-normal TTFT growing with the prompt, streamed in up to 8 chunks, 1.2% failures."""
    rng = np.random.default_rng(seed)
    intended = start + np.cumsum(rng.exponential(1.0 / rate, n))
    queue_s = rng.exponential(2.0, n) / 1000
    prompt = rng.integers(20, 1500, n)
    out = np.clip(rng.lognormal(4.6, 0.6, n).astype(int), 1, 1024)
    ttft_s = (rng.lognormal(np.log(90 * slowdown), 0.45, n) + prompt * 0.04) / 1000
    tpot_s = rng.lognormal(np.log(18 * slowdown), 0.25, n) / 1000
    failed = rng.random(n) < 0.012
    reasons = rng.choice(ERROR_REASONS, n, p=[0.5, 0.3, 0.1, 0.1])
    failed_after_s = rng.uniform(5, 30000, n) / 1000
    workers = rng.integers(0, 4, n)
    records = []
    for i in range(n):
        rec = RequestRecord(f"req-{seed}-{i:06d}", scenario, int(workers[i]), stream=True)
        rec.send_s, rec.send_perf, rec.intended_perf = (
            float(intended[i] + queue_s[i]),
            0.0,
            -float(queue_s[i]),
        )
        rec.prompt_tokens, rec.requested_output_tokens = int(prompt[i]), 1024
        if failed[i]:
            reason = str(reasons[i])
            rec.error, rec.usage_output_tokens, rec.end_perf = reason, 0, float(failed_after_s[i])
            rec.status = {"http_503": 503, "http_429": 429}.get(reason, 0)
        else:
            tokens = int(out[i])
            per_chunk = np.diff(np.linspace(0, tokens, min(tokens, 8) + 1).round()).astype(int)
            arrived = np.cumsum(per_chunk) - per_chunk[0]  # tokens before each chunk, after the first
            rec.chunk_perf = (ttft_s[i] + arrived * tpot_s[i]).tolist()
            rec.chunk_tokens = per_chunk.tolist()
            rec.end_perf, rec.usage_output_tokens, rec.status = rec.chunk_perf[-1], tokens, 200
        records.append(rec)
    return records


def write_run(
    root: Path,
    run_id: str,
    n: int,
    start: float,
    seed: int,
    scenario: str = "chat",
    slowdown: float = 1.0,
    baseline: str | None = None,
) -> Path:
    """One run folder written by the load generator's own writer (requests.parquet, report.html,
    summary.json last), then gate.json."""
    rate = 40.0
    collector = Collector()
    for record in make_records(n, start, rate, seed, slowdown, scenario):
        collector.add(record)
    folder = root / "runs" / run_id
    slo = {"ttft_p95_ms": 400.0, "e2e_p95_ms": 6000.0, "error_rate": 0.02}
    config = {
        "run_id": run_id,
        "name": run_id,
        "url": "http://127.0.0.1:8000",
        "model": "tiny-llama",
        "endpoint": "chat",
        "scenario": scenario,
        "stream": True,
        "rate": rate,
        "users": None,
        "max_tokens": 1024,
        "goodput_slo": {"ttft_ms": slo["ttft_p95_ms"], "e2e_ms": slo["e2e_p95_ms"]},
        "slo": slo,
        "server": {"url": "http://127.0.0.1:8000", "model": "tiny-llama", "engine": "reference"},
    }
    ended = max(r["end_s"] for r in collector.rows)
    summary = write_run_folder(folder, collector, config, "complete", start, ended, combine({}))
    ttft_p95 = summary["metrics"]["ttft_ms"]["p95"]
    sent = summary["requests"]["completed"] + summary["requests"]["failed"]
    error_rate = summary["requests"]["failed"] / sent
    checks = [
        {
            "name": "ttft_p95_ms",
            "value": ttft_p95,
            "threshold": slo["ttft_p95_ms"],
            "passed": ttft_p95 <= 400,
        },
        {"name": "error_rate", "value": error_rate, "threshold": 0.02, "passed": error_rate <= 0.02},
    ]
    verdict = "pass" if all(c["passed"] for c in checks) else "fail"
    gate = {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": run_id,
        "verdict": verdict,
        "exit_code": 0 if verdict == "pass" else 1,
        "checks": checks,
        "baseline_run_id": baseline,
        "created_at": ended + 5,
    }
    write_json_atomic(folder / "gate.json", gate)
    return folder


def sample_capacity(
    best: dict, target_rate: float, price_per_hour: float, headroom: float
) -> dict[str, object]:
    """A `capacity` block as `tollgate sweep --target-rate --price-per-hour` writes it (120 prompt
    tokens per request in this sample)."""
    cap = best["requests_per_s"]
    replicas = int(np.ceil(target_rate / (cap * (1 - headroom))))
    out_per_req, in_per_req = best["output_tokens_per_s"] / cap, 120.0
    per_hour = replicas * price_per_hour
    return {
        "target_rate_per_s": target_rate,
        "headroom": headroom,
        "price_per_replica_hour": price_per_hour,
        "assumptions": ["linear scaling across replicas", "same hardware", "same workload"],
        "feasible": True,
        "capacity_per_replica_rps": cap,
        "usable_per_replica_rps": cap * (1 - headroom),
        "replicas": replicas,
        "output_tokens_per_s_per_replica": best["output_tokens_per_s"],
        "load_per_replica_rps": target_rate / replicas,
        "output_tokens_per_request": out_per_req,
        "input_tokens_per_request": in_per_req,
        "cost_per_hour": per_hour,
        "cost_per_million_output_tokens": per_hour / (target_rate * out_per_req * 3600) * 1e6,
        "cost_per_million_input_tokens": per_hour / (target_rate * in_per_req * 3600) * 1e6,
    }


def write_sweep(root: Path, sweep_id: str, created_at: float) -> Path:
    """A rate sweep (point fields as `tollgate sweep` writes them): latency stays flat until the
    server saturates, then climbs; the knee is the highest load that passed the SLO."""
    points = []
    for i, rate in enumerate(np.arange(5, 85, 5, dtype=float)):
        util = rate / 55.0
        achieved = 55.0 * np.tanh(util)
        ttft_p99 = 160 + 80 * util + 5000 * max(util - 0.85, 0) ** 2
        failed = ["ttft_p99_ms"] if ttft_p99 > 500 else []
        points.append(
            {
                "run_id": f"{sweep_id}-step{i:02d}",
                "load": float(rate),
                "status": "complete",
                "offered_rate_per_s": float(rate),
                "requests_per_s": float(achieved),
                "output_tokens_per_s": float(achieved * 110),
                "goodput_per_s": float(achieved * (0.97 if not failed else 0.6)),
                "ttft_p99_ms": float(ttft_p99),
                "e2e_p50_ms": float(ttft_p99 / 2 + 2000 + 10 * rate),
                "e2e_p99_ms": float(ttft_p99 + 4200 + 30 * rate),
                "error_rate": float(0.001 if util < 1 else 0.02 * (util - 1) * 10),
                "client_bound": False,
                "passed": not failed,
                "failed_checks": failed,
            }
        )
    best = max((p for p in points if p["passed"]), key=lambda p: p["load"])
    sweep = {
        "schema_version": RUN_SCHEMA_VERSION,
        "sweep_id": sweep_id,
        "mode": "rate",
        "points": points,
        "knee": {k: best[k] for k in ("load", "run_id", "requests_per_s", "goodput_per_s")},
        "slo": {"path": "slo.yaml", "checks": ["ttft_p99_ms"], "goodput": {"ttft_ms": 500}},
        "created_at": created_at,
        "stopped_because": None,
        "capacity": sample_capacity(best, target_rate=200.0, price_per_hour=4.0, headroom=0.2),
    }
    path = root / "sweeps" / sweep_id / "sweep.json"
    _write_json(path, sweep)
    return path


def generate(
    out: Path, days: float = 7.0, n_requests: int = 100_000, n_targets: int = 3, end: float | None = None
) -> dict[str, Any]:
    """Write the whole fixture tree under `out`; returns what was written."""
    end = time.time() if end is None else end
    out.mkdir(parents=True, exist_ok=True)
    day = 86400.0
    runs = [
        write_run(out, "20260101-chat-baseline", max(n_requests // 10, 200), end - 2 * day, seed=1),
        write_run(
            out,
            "20260102-chat-candidate",
            n_requests,
            end - day,
            seed=2,
            slowdown=1.25,
            baseline="20260101-chat-baseline",
        ),
        write_run(
            out, "20260102-rag-long", max(n_requests // 20, 200), end - day / 2, seed=3, scenario="rag"
        ),
    ]
    sweep = write_sweep(out, "sweep-20260102", end - day / 3)
    drift = write_drift(out, 24, end)
    store = write_store(out / "monitor.db", end=end, days=days, n_targets=n_targets)
    return {"runs": runs, "sweep": sweep, "drift": drift, "store": store}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards.sample_data", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="folder to write (the dashboard's --data)")
    parser.add_argument(
        "--days", type=float, default=7.0, help="days of 5-second monitor samples (default 7)"
    )
    parser.add_argument(
        "--requests", type=int, default=100_000, help="requests in the largest run (default 100000)"
    )
    parser.add_argument("--targets", type=int, default=3, help="monitored targets (default 3)")
    args = parser.parse_args(argv)
    if (args.out / "monitor.db").exists():
        print(f"{args.out / 'monitor.db'} exists; choose an empty folder", file=sys.stderr)
        return 2
    written = generate(args.out, args.days, args.requests, args.targets)
    print(
        f"wrote {len(written['runs'])} runs, 1 sweep, {len(written['drift'])} drift checks, {written['store']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

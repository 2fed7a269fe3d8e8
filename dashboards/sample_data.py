"""Realistic fixture data that follows Tollgate's contracts, for tests, benchmarks and demos.

    python -m dashboards.sample_data OUT [--days 7] [--requests 100000] [--targets 3]

writes OUT/runs/<id>/ (summary.json, requests.parquet, gate.json), OUT/sweeps/<id>/sweep.json,
OUT/monitor.db (see sample_store) and OUT/drift/<ts>.json, the layout `tollgate dashboard --data OUT`
reads. Numbers are shaped like a real LLM server (log-normal latencies, load-dependent TTFT, a
diurnal request rate, an incident) so the plots look like what people will see in production.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboards.sample_drift import write_drift
from dashboards.sample_store import write_store
from tollgate.contracts.run_folder import LATENCY_METRICS, RUN_SCHEMA_VERSION

ERROR_REASONS = ("timeout", "http_503", "connection_reset", "http_429")


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))


def _block(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {k: float("nan") for k in ("p50", "p90", "p95", "p99", "p999", "mean")} | {"count": 0}
    q = np.percentile(v, [50, 90, 95, 99, 99.9])
    return dict(zip(("p50", "p90", "p95", "p99", "p999"), map(float, q), strict=False)) | {
        "mean": float(v.mean()),
        "count": int(v.size),
    }


def make_requests(n: int, start: float, rate: float, seed: int, slowdown: float = 1.0) -> pd.DataFrame:
    """Per-request records (REQUEST_COLUMNS) of an open-loop run at `rate` requests/s."""
    rng = np.random.default_rng(seed)
    intended = start + np.cumsum(rng.exponential(1.0 / rate, n))
    queue_ms = rng.exponential(2.0, n)
    send = intended + queue_ms / 1000
    prompt = rng.integers(20, 1500, n)
    out = np.clip(rng.lognormal(4.6, 0.6, n).astype(int), 1, 1024)
    ttft = rng.lognormal(np.log(90 * slowdown), 0.45, n) + prompt * 0.04
    tpot = rng.lognormal(np.log(18 * slowdown), 0.25, n)
    e2e = ttft + tpot * (out - 1)
    failed = rng.random(n) < 0.012
    reasons = rng.choice(ERROR_REASONS, n, p=[0.5, 0.3, 0.1, 0.1])
    status = np.where(
        failed, np.where(reasons == "http_503", 503, np.where(reasons == "http_429", 429, 0)), 200
    )
    nan = np.full(n, np.nan)
    df = pd.DataFrame(
        {
            "request_id": [f"req-{seed}-{i:06d}" for i in range(n)],
            "scenario": "chat",
            "worker": rng.integers(0, 4, n).astype(str),
            "intended_send_s": intended,
            "send_s": send,
            "first_token_s": np.where(failed, nan, send + ttft / 1000),
            "end_s": send + np.where(failed, rng.uniform(5, 30000, n), e2e) / 1000,
            "ttft_ms": np.where(failed, nan, ttft),
            "e2e_ms": np.where(failed, nan, e2e),
            "tpot_ms": np.where(failed | (out < 2), nan, tpot),
            "itl_mean_ms": np.where(failed, nan, tpot * rng.uniform(0.95, 1.05, n)),
            "client_queue_ms": queue_ms,
            "prompt_tokens": prompt,
            "output_tokens": np.where(failed, 0, out),
            "output_tokens_estimated": False,
            "n_chunks": np.where(failed, 0, out),
            "status": status,
            "ok": ~failed,
            "error": np.where(failed, reasons, ""),
        }
    )
    return df


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
    """One run folder: requests.parquet, summary.json (written last) and gate.json."""
    rate = 40.0
    df = make_requests(n, start, rate, seed, slowdown)
    df["scenario"] = scenario
    folder = root / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "requests.parquet", index=False)
    ok = df[df["ok"]]
    duration = float(df["end_s"].max() - start)
    metrics = {
        m: _block(df[c].to_numpy())
        for m, c in zip(LATENCY_METRICS, ("ttft_ms", "itl_mean_ms", "tpot_ms", "e2e_ms"), strict=False)
    }
    metrics["client_queue_ms"] = _block(df["client_queue_ms"].to_numpy())
    metrics["ttft_from_intended_ms"] = _block((ok["first_token_s"] - ok["intended_send_s"]).to_numpy() * 1000)
    metrics["e2e_from_intended_ms"] = _block((ok["end_s"] - ok["intended_send_s"]).to_numpy() * 1000)
    slo = {"ttft_p95_ms": 400.0, "e2e_p95_ms": 6000.0, "error_rate": 0.02}
    good = ok[(ok["ttft_ms"] <= slo["ttft_p95_ms"]) & (ok["e2e_ms"] <= slo["e2e_p95_ms"])]
    summary = {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": run_id,
        "status": "complete",
        "started_at": start,
        "ended_at": start + duration,
        "duration_s": duration,
        "config": {
            "scenario": scenario,
            "target": "http://127.0.0.1:8000",
            "model": "tiny-llama",
            "mode": "open",
            "rate_per_s": rate,
            "max_tokens": 1024,
            "stream": True,
            "slo": slo,
        },
        "environment": {"tollgate": "0.1.0", "locust": "2.47.0", "python": "3.11", "cpu_count": 16},
        "server": {"url": "http://127.0.0.1:8000", "model": "tiny-llama", "engine": "reference"},
        "metrics": metrics,
        "throughput": {
            "requests_per_s": len(ok) / duration,
            "output_tokens_per_s": float(ok["output_tokens"].sum()) / duration,
            "offered_rate_per_s": rate,
        },
        "goodput": {"requests_per_s": len(good) / duration, "fraction": len(good) / max(len(df), 1)},
        "requests": {"total": len(df), "completed": int(df["ok"].sum()), "failed": int((~df["ok"]).sum())},
        "errors": {str(k): int(v) for k, v in df.loc[~df["ok"], "error"].value_counts().items()},
        "validity": {"client_bound": False, "client_cpu_max_pct": 41.0, "estimated_tokens": False},
    }
    ttft_p95 = metrics["ttft_ms"]["p95"]
    checks = [
        {
            "name": "ttft_p95_ms",
            "value": ttft_p95,
            "threshold": slo["ttft_p95_ms"],
            "passed": ttft_p95 <= 400,
        },
        {"name": "error_rate", "value": len(df[~df["ok"]]) / len(df), "threshold": 0.02, "passed": True},
    ]
    verdict = "pass" if all(c["passed"] for c in checks) else "fail"
    gate = {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": run_id,
        "verdict": verdict,
        "exit_code": 0 if verdict == "pass" else 1,
        "checks": checks,
        "baseline_run_id": baseline,
        "created_at": start + duration + 5,
    }
    _write_json(folder / "gate.json", gate)
    _write_json(folder / "summary.json", summary)
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

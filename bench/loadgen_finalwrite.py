"""Peak RSS of a run's final write (requests.partial.jsonl -> requests.parquet + summary.json + report.html).

streamed   loadgen.report.write_run as it is: rows stream in batches of rowstream.BATCH_ROWS.
baseline   the previous final write's core: every row read into one list, one pandas DataFrame sorted
           by send_s, DataFrame.to_parquet (its summary and plots over that frame are left out, so
           the baseline is, if anything, lower than the old path's real peak).

Each runs in a fresh interpreter over the same file; peak is VmHWM, growth is the peak minus the
RSS once the libraries are imported.

    python -m bench loadgen --only=finalwrite [--quick]      (300k rows; 60k with --quick)
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHUNKS = 64  # token chunks per request: chunk_ms and chunk_tokens hold one entry each


def write_rows(path: Path, n: int) -> None:
    """n rows shaped as a closed-loop chat run writes them (64-token replies, 5% failures)."""
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            send, ttft, gap = 1_700_000_000.0 + i * 0.02, rng.uniform(15, 90), rng.uniform(4, 8)
            ok = rng.random() > 0.05
            chunk_ms = [round(ttft + k * gap, 3) for k in range(CHUNKS)] if ok else []
            e2e = chunk_ms[-1] if ok else float("nan")
            row = {
                "request_id": f"{i:08x}",
                "scenario": "chat",
                "worker": i % 4,
                "intended_send_s": float("nan"),
                "send_s": send,
                "first_token_s": send + ttft / 1000 if ok else float("nan"),
                "end_s": send + (e2e if ok else 3.0) / 1000,
                "ttft_ms": ttft if ok else float("nan"),
                "e2e_ms": e2e,
                "tpot_ms": gap if ok else float("nan"),
                "itl_mean_ms": gap if ok else float("nan"),
                "client_queue_ms": float("nan"),
                "prompt_tokens": 140,
                "output_tokens": CHUNKS if ok else 0,
                "output_tokens_estimated": False,
                "n_chunks": len(chunk_ms),
                "status": 200 if ok else 503,
                "ok": ok,
                "error": "" if ok else "HTTP 503",
                "ttft_from_intended_ms": float("nan"),
                "e2e_from_intended_ms": float("nan"),
                "chunk_ms": chunk_ms,
                "chunk_tokens": [1] * len(chunk_ms),
                "stream": True,
                "requested_input_tokens": 128,
                "requested_output_tokens": CHUNKS,
                "turn": 0,
            }
            handle.write(json.dumps(row) + "\n")


def _rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc: ru_maxrss would include the parent's
    peak from before exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def child(mode: str, run_dir: Path) -> dict[str, Any]:
    import pandas as pd
    import plotly.graph_objects  # noqa: F401  (imported before the mark, as the real write imports it)

    from loadgen.collector import Collector
    from loadgen.report import PARTIAL_ROWS, write_run
    from loadgen.rowstream import iter_jsonl

    before, t0 = _rss_mib("VmRSS"), time.perf_counter()
    if mode == "streamed":
        config = {"run_id": "bench", "rate": None, "goodput_slo": {"ttft_ms": 80.0}}
        summary = write_run(
            run_dir, Collector(), config, "complete", 0.0, time.time(), {"client_bound": False}
        )
        rows = summary["requests"]["sent"]
    else:
        frame = pd.DataFrame(list(iter_jsonl(run_dir / PARTIAL_ROWS)))
        frame = frame.sort_values("send_s", kind="stable").reset_index(drop=True)
        frame.to_parquet(run_dir / "requests.parquet", index=False)
        rows = len(frame)
    return {
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "before_mib": before,
        "peak_mib": _rss_mib("VmHWM"),
    }


def finalwrite(out: Path, rows: int) -> dict[str, Any]:
    from loadgen.report import PARTIAL_ROWS

    source = out / "finalwrite-rows.jsonl"
    write_rows(source, rows)
    results: dict[str, Any] = {"rows": rows, "jsonl_mib": round(source.stat().st_size / 2**20, 1)}
    for mode in ("baseline", "streamed"):
        run_dir = out / f"finalwrite-{mode}"
        run_dir.mkdir(exist_ok=True)
        shutil.copyfile(source, run_dir / PARTIAL_ROWS)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.loadgen_finalwrite", mode, str(run_dir)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        figures["growth_mib"] = round(figures["peak_mib"] - figures["before_mib"], 1)
        results[mode] = figures
    results["peak_ratio"] = round(results["baseline"]["peak_mib"] / results["streamed"]["peak_mib"], 2)
    results["growth_ratio"] = round(
        results["baseline"]["growth_mib"] / max(results["streamed"]["growth_mib"], 1.0), 1
    )
    return results


def finalwrite_rows(fw: dict[str, Any]) -> list[list[Any]]:
    base, new = fw["baseline"], fw["streamed"]
    return [
        [
            f"final write {fw['rows']} rows: peak RSS MiB",
            base["peak_mib"],
            new["peak_mib"],
            fw["peak_ratio"],
            True,
        ],
        [
            "final write: RSS growth MiB over imports",
            base["growth_mib"],
            new["growth_mib"],
            fw["growth_ratio"],
            new["growth_mib"] < base["growth_mib"],
        ],
        ["final write: seconds", round(base["seconds"], 1), round(new["seconds"], 1), "", True],
    ]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], Path(sys.argv[2]))))

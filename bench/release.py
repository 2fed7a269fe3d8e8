"""`python -m bench release`: does interleaving keep a real CPU hog from reading as an A/B difference?

Two identical reference servers (tiny preset, CPU, one torch thread each). Each order of `tollgate
ab` runs the same open-loop workload (1 request/s per side); once the two servers have answered half of all requests
together, a bounded CPU hog (two busy processes, killed when the run ends, at most HOG_MAX_S) degrades
the machine. Sequentially that is all of B; concurrently it is the second half of both. The
sequential run is the baseline: its false difference (relative shift and effect size of TTFT and
E2E, verdict) is printed side by side with the concurrent one's. Writes reports/bench/release.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port, print_table, stop_process, write_result

REPO = Path(__file__).resolve().parents[1]
HOG_MAX_S = 120.0
HOG = "import time\nend = time.time() + %f\nwhile time.time() < end: pass\n"


@contextlib.contextmanager
def reference_server(log: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "tollgate",
        "serve",
        "--model",
        "tiny",
        "--device",
        "cpu",
        "--port",
        str(port),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--max-num-seqs", "8", "--num-kv-blocks", "256"], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"reference server did not start; see {log}")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(proc)


def answered(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "vllm:request_success"
        for s in fam.samples
        if s.name.endswith("_total")
    )


class Hog:
    """Two busy processes from the moment the servers have answered `after` more requests."""

    def __init__(self, urls: list[str], after: float) -> None:
        self.urls, self.stop, self.procs = urls, threading.Event(), []
        self.start_count = sum(answered(u) for u in urls)
        self.after, self.started_at = after, None
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(0.1):
            if sum(answered(u) for u in self.urls) - self.start_count >= self.after:
                self.started_at = time.time()
                self.procs = [subprocess.Popen([sys.executable, "-c", HOG % HOG_MAX_S]) for _ in range(2)]
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for p in self.procs:
            p.kill()
            p.wait()


def ab_run(urls: list[str], order: str, out: Path, requests: int) -> dict[str, Any]:
    hog = Hog(urls, after=requests)  # both sides together: half of the 2 x requests
    try:
        cmd = [
            sys.executable,
            "-m",
            "tollgate",
            "ab",
            "--url-a",
            urls[0],
            "--url-b",
            urls[1],
            "--order",
            order,
        ]
        cmd += ["--ab-out", str(out), "--rate", "1", "--requests", str(requests), "--seed", "5"]
        cmd += ["--output-tokens", "8", "--input-tokens", "16", "--min-samples", "10"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    finally:
        hog.close()
    folder = Path(proc.stdout.strip().splitlines()[-1])
    result = json.loads((folder / "ab.json").read_text())
    m = result["metrics"]
    return {
        "order": order,
        "verdict": result["verdict"],
        "exit_code": proc.returncode,
        "hog_started": hog.started_at is not None,
        "paired": result.get("paired", False),
        # Cliff's delta (two samples) or the matched-pairs rank-biserial (paired slots)
        **{f"{k}_effect": m[k].get("cliffs_delta", m[k].get("rank_biserial")) for k in ("ttft_ms", "e2e_ms")},
        **{f"{k}_shift": m[k].get("relative_shift") for k in ("ttft_ms", "e2e_ms")},
        **{f"{k}_median_a": m[k].get("median_a") for k in ("ttft_ms", "e2e_ms")},
        **{f"{k}_median_b": m[k].get("median_b") for k in ("ttft_ms", "e2e_ms")},
    }


def main(argv: list[str]) -> int:
    requests = 16 if "--quick" in argv else 30
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-release-") as tmp:
        out = Path(tmp)
        with reference_server(out / "a.log") as a, reference_server(out / "b.log") as b:
            runs = [ab_run([a, b], order, out, requests) for order in ("sequential", "concurrent")]
    cols = ["order", "verdict", "TTFT delta/r", "TTFT shift", "E2E delta/r", "E2E shift", "hog ran"]
    rows = [
        [r["order"], r["verdict"], r["ttft_ms_effect"], r["ttft_ms_shift"], r["e2e_ms_effect"]]
        + [r["e2e_ms_shift"], r["hog_started"]]
        for r in runs
    ]
    print_table("A/B of two identical servers, CPU hog from halfway (baseline: sequential)", cols, rows)
    seq, conc = runs
    ratio = abs(seq["e2e_ms_shift"] or 0) / max(abs(conc["e2e_ms_shift"] or 0), 1e-3)
    path = write_result(
        "release", {"requests_per_side": requests, "runs": runs, "e2e_shift_ratio_seq_over_conc": ratio}
    )
    print(f"|E2E shift| sequential / concurrent = {ratio:.1f}x; wrote {path}")
    return 0

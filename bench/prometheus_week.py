"""A week of a reference server's raw metrics in a real Prometheus, for bench/dashboard.py.

The series (counters, gauges and histogram buckets with vLLM's names, one sample every 5 s, a diurnal
load as in dashboards/sample_store.py) are written as OpenMetrics text and backfilled with
`promtool tsdb create-blocks-from openmetrics`, then a Prometheus is started on that TSDB.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import free_port, stop_process
from tollgate.contracts import server_metrics as m

STEP_S = 5
INSTANCE, JOB = "reference-cpu:8000", "tollgate"
LABELS = f'instance="{INSTANCE}",job="{JOB}",model_name="tiny"'
BUCKETS = {  # histogram -> (upper bounds, median at full load in seconds)
    m.VLLM_TTFT: ((0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0), 0.12),
    m.VLLM_ITL: ((0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5), 0.03),
    m.VLLM_E2E: ((0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0), 2.0),
}


def _write(out: io.TextIOBase, name: str, labels: str, t: np.ndarray, v: np.ndarray) -> None:
    body = np.char.add(np.char.add(f"{name}{{{labels}}} ", np.char.mod("%.6g", v)), np.char.mod(" %d\n", t))
    out.write("".join(body.tolist()))


def write_openmetrics(path: Path, days: float, end: float, seed: int = 7) -> int:
    """The week as OpenMetrics text; returns the number of samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(end - days * 86400, end, STEP_S).astype(np.int64)
    load = np.clip(
        0.5 + 0.35 * np.sin(2 * np.pi * (t / 86400.0 - 0.35)) + rng.normal(0, 0.03, t.size), 0.02, 1.2
    )
    finished = rng.poisson(2.0 * load * STEP_S).astype(float)
    refused = rng.poisson(np.clip(load - 0.9, 0, None) * 10 * STEP_S).astype(float)
    samples = 0
    with path.open("w") as out:

        def family(name: str, kind: str, series: list[tuple[str, str, np.ndarray]]) -> None:
            nonlocal samples
            out.write(f"# TYPE {name} {kind}\n")
            for sample, labels, values in series:
                _write(out, sample, labels, t, values)
                samples += values.size

        def counter(total_name: str, per_step: np.ndarray, extra: str = "") -> None:
            labels = LABELS + (f",{extra}" if extra else "")
            family(m.family(total_name), "counter", [(total_name, labels, np.cumsum(per_step))])

        family("up", "gauge", [("up", f'instance="{INSTANCE}",job="{JOB}"', np.ones(t.size))])
        out.write(f"# TYPE {m.family(m.VLLM_REQUEST_SUCCESS)} counter\n")
        for reason, share in (("stop", 0.7), ("length", 0.29), ("abort", 0.01)):
            _write(
                out,
                m.VLLM_REQUEST_SUCCESS,
                LABELS + f',finished_reason="{reason}"',
                t,
                np.cumsum(finished * share),
            )
            samples += t.size
        counter(m.REQUESTS_REJECTED, refused, 'reason="queue_full"')
        counter(m.VLLM_PROMPT_TOKENS, finished * 120)
        counter(m.VLLM_GENERATION_TOKENS, finished * 60)
        counter(m.VLLM_PREEMPTIONS, rng.poisson(np.clip(load - 1.0, 0, None) * STEP_S).astype(float))
        counter(m.VLLM_PREFIX_QUERIES, finished * 120)
        counter(m.VLLM_PREFIX_HITS, finished * 50)
        counter(m.CLIENT_PROCESS_CPU, 0.8 * load * STEP_S)
        for name, values in (
            (m.VLLM_RUNNING, np.round(8 * load)),
            (m.VLLM_WAITING, np.round(np.clip(load - 0.8, 0, None) * 20)),
            (m.VLLM_KV_USAGE, np.clip(0.2 + 0.6 * load, 0, 1)),
            (m.CLIENT_PROCESS_RSS, 6e8 + 1e8 * load),
        ):
            family(name, "gauge", [(name, LABELS, values)])
        for name, (bounds, median) in BUCKETS.items():
            observed = rng.lognormal(np.log(median * (0.5 + load)), 0.6, (8, t.size))  # 8 draws a step
            weights = finished / 8
            series = []
            for le in (*bounds, float("inf")):
                per_step = (observed <= le).sum(axis=0) * weights
                series.append(
                    (f"{name}_bucket", LABELS + f',le="{le:g}"'.replace("inf", "+Inf"), np.cumsum(per_step))
                )
            series.append((f"{name}_count", LABELS, np.cumsum(finished)))
            series.append((f"{name}_sum", LABELS, np.cumsum(observed.mean(axis=0) * finished)))
            family(name, "histogram", series)
        out.write("# EOF\n")
    return samples


class WeekOfPrometheus:
    """Backfill the week into a fresh TSDB under `folder` and serve it with Prometheus."""

    def __init__(self, folder: Path, days: float) -> None:
        self.folder, self.days = folder, days
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.backfill_s = 0.0
        self.samples = 0

    def __enter__(self) -> WeekOfPrometheus:
        prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
        if not prometheus or not promtool:
            raise RuntimeError("needs the Debian `prometheus` package (prometheus and promtool)")
        tsdb, marker = self.folder / "tsdb", self.folder / "spec.json"
        spec = {"days": self.days, "version": 1}
        if marker.exists() and json.loads(marker.read_text())["spec"] == spec:  # backfilling takes minutes
            self.samples, self.backfill_s = json.loads(marker.read_text())["samples"], 0.0
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            start = time.perf_counter()
            text = self.folder / "week.om"
            self.samples = write_openmetrics(text, self.days, time.time() - 30)
            subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(text), str(tsdb)],
                           check=True, capture_output=True)  # fmt: skip
            text.unlink()
            self.backfill_s = time.perf_counter() - start
            marker.write_text(json.dumps({"spec": spec, "samples": self.samples}))
        config = self.folder / "prometheus.yml"
        config.write_text("global: {scrape_interval: 5s}\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tsdb}", "--storage.tsdb.retention.time=30d",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("Prometheus did not become ready on the backfilled TSDB within 120 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, timeout=15)

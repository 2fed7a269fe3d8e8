"""`tollgate monitor` on real vLLM: every figure vLLM's metrics allow is derived, and its TTFT/E2E
percentiles (from vLLM's histograms) agree with what the load generator measured client-side."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.peers.tools import load, names, scrape, summary_brief
from tests.support.servers import REPO_ROOT
from tollgate.contracts.figures import FIGURES

pytestmark = pytest.mark.timeout(600)

# vLLM 0.32.0 (CPU build) /metrics, scraped from the exported SmolLM2 after traffic: the names Tollgate
# relies on. `http_requests_total` carries {handler, method, status="2xx"|"4xx"|...} (status classes,
# not codes); vLLM counts queue-limit refusals in vllm:admission_rejections_total{reason}.
VLLM_032_NAMES = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total",
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
    "vllm:request_success_total", "vllm:admission_rejections_total",
    "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket", "vllm:request_queue_time_seconds_bucket",
    "vllm:request_time_per_output_token_seconds_bucket", "vllm:request_prefill_time_seconds_bucket",
    "vllm:request_decode_time_seconds_bucket", "vllm:request_inference_time_seconds_bucket",
    "vllm:request_prompt_tokens_bucket", "vllm:request_generation_tokens_bucket",
    "vllm:iteration_tokens_total_bucket", "vllm:cache_config_info",
    "http_requests_total", "http_request_duration_seconds_bucket",
    "process_resident_memory_bytes", "process_cpu_seconds_total",
}  # fmt: skip
# Figures vLLM's metrics allow (GPU ones come from dcgm-exporter, host and drift ones from Tollgate's).
VLLM_FIGURES = {
    "up", "scrape_duration_s", "request_rate", "error_rate", "rejected_rate", "prompt_tokens_per_s",
    "generation_tokens_per_s", "queue_depth", "requests_running", "kv_cache_usage", "preemptions_per_s",
    "prefix_cache_hit_rate", "process_cpu_pct", "process_rss_bytes",
    *(f"{h}_p{q}_s" for h in ("ttft", "itl", "e2e") for q in (50, 95, 99)),
}  # fmt: skip


def test_vllm_exposes_every_name_the_monitor_reads(vllm):
    present = names(scrape(vllm.url))
    assert present >= VLLM_032_NAMES, sorted(VLLM_032_NAMES - present)
    # The figure contract (what the monitor and the Prometheus export both read): each figure vLLM's
    # metrics allow has a source that vLLM selects, and that source's always-exported terms are there.
    for figure in sorted(VLLM_FIGURES & FIGURES.keys()):
        chosen = [src for src in FIGURES[figure] if src.present in present]
        assert chosen, f"{figure}: vLLM 0.32 exposes none of {[src.present for src in FIGURES[figure]]}"
        src = chosen[0]
        required = [t.metric for t in (*src.terms, *src.den) if not t.optional]
        missing = [n for n in required if not ({n, n + "_bucket"} & present)]
        assert not missing, f"{figure}: its vLLM source reads {missing}, absent from vLLM 0.32"


def _bucket_width(vllm_url: str, name: str, seconds: float) -> float:
    """Width of the histogram bucket of `name` holding `seconds`: the resolution vLLM's own figure has."""
    bounds = sorted({float(dict(labels)["le"]) for (n, labels) in scrape(vllm_url) if n == name + "_bucket"})
    upper = next(b for b in bounds if b >= seconds)
    lower = max([0.0, *(b for b in bounds if b < seconds)])
    return upper - lower


def test_monitor_derives_every_figure_and_agrees_with_the_client(vllm, tmp_path):
    store = tmp_path / "monitor.db"
    cmd = [sys.executable, "-m", "tollgate", "monitor", "--target", vllm.url + "/metrics", "--interval", "1s",
           "--window", "10m", "--store", str(store), "--duration", "10m"]  # fmt: skip
    monitor = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        time.sleep(3)  # a scrape before the load, so rates have a start
        code, _, summary, stderr = load(
            tmp_path, vllm.url, "--endpoint", "chat", "--users", "2", "--requests", "8",
            "--input-tokens", "32", "--output-tokens", "16", "--name", "monitored",
        )  # fmt: skip
        assert code == 0, f"{summary_brief(summary)}\n{stderr[-2000:]}"
        time.sleep(3)  # the last scrapes see the finished requests
    finally:
        monitor.send_signal(signal.SIGINT)
        out, _ = monitor.communicate(timeout=60)
    with sqlite3.connect(store) as db:
        derived = {name for (name,) in db.execute("SELECT DISTINCT name FROM series")}
        latest = dict(
            db.execute(
                "SELECT name, value FROM series s WHERE resolution = (SELECT MIN(resolution) FROM series) "
                "AND ts = (SELECT MAX(ts) FROM series t WHERE t.name = s.name)"
            ).fetchall()
        )
    assert derived >= VLLM_FIGURES, f"missing {sorted(VLLM_FIGURES - derived)}\n{out[-3000:]}"
    assert latest["error_rate"] == 0
    for figure, metric, name in (
        ("ttft_p50_s", "ttft_ms", "vllm:time_to_first_token_seconds"),
        ("e2e_p50_s", "e2e_ms", "vllm:e2e_request_latency_seconds"),
    ):
        client = summary["metrics"][metric]["p50"] / 1000
        # vLLM's histogram resolves p50 only to its bucket; client-side adds HTTP and SSE overhead (~ms)
        tolerance = _bucket_width(vllm.url, name, client) + 0.05
        assert abs(latest[figure] - client) <= tolerance, (figure, latest[figure], client, tolerance)

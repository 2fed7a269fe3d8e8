"""/metrics after real traffic: vLLM's names, types, labels and buckets; scrapeable by Prometheus."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from reference_server.server.metrics import VLLM_ITL_BUCKETS, VLLM_REQUEST_LATENCY_BUCKETS, VLLM_TTFT_BUCKETS
from tests.server.scrape import families

pytestmark = pytest.mark.timeout(120)

GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")
COUNTERS = (
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
    "vllm:num_preemptions",
    "vllm:request_success",
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "tollgate_requests_rejected",
)
HISTOGRAMS = {
    "vllm:time_to_first_token_seconds": VLLM_TTFT_BUCKETS,
    "vllm:inter_token_latency_seconds": VLLM_ITL_BUCKETS,
    "vllm:e2e_request_latency_seconds": VLLM_REQUEST_LATENCY_BUCKETS,
    "vllm:request_queue_time_seconds": VLLM_REQUEST_LATENCY_BUCKETS,
    "vllm:request_prompt_tokens": [1, 2, 5, 10, 20, 50, 100],
    "vllm:request_generation_tokens": [1, 2, 5, 10, 20, 50, 100],
}


@pytest.fixture(scope="module")
def metrics_text(reference_server):
    with httpx.Client(base_url=reference_server.url, timeout=60) as client:
        return _traffic_then_scrape(client)


def _traffic_then_scrape(client: httpx.Client) -> str:
    prompt = "The same prefix is asked twice, so the prefix cache is queried. " * 2
    for _ in range(2):
        client.post("/v1/completions", json={"prompt": prompt, "max_tokens": 4, "ignore_eos": True})
    with client.stream("POST", "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                              "max_tokens": 3, "stream": True}) as r:  # fmt: skip
        r.read()
    client.post("/v1/completions", json={"prompt": "x", "model": "nope"})  # one rejected request
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_families_have_vllm_types_and_labels(metrics_text):
    fams = families(metrics_text)
    expected = {**dict.fromkeys(GAUGES, "gauge"), **dict.fromkeys(COUNTERS, "counter")}
    expected |= dict.fromkeys(HISTOGRAMS, "histogram")
    for name, kind in expected.items():
        assert name in fams, f"{name} missing from /metrics"
        assert fams[name].type == kind, f"{name} is a {fams[name].type}, expected {kind}"
        assert all(s.labels.get("model_name") == "tiny" for s in fams[name].samples), name
    assert "process_resident_memory_bytes" in fams and "process_cpu_seconds" in fams


def test_histograms_keep_vllm_boundaries_and_add_finer_ones(metrics_text):
    fams = families(metrics_text)
    for name, vllm_bounds in HISTOGRAMS.items():
        bounds = [float(s.labels["le"]) for s in fams[name].samples if s.name == name + "_bucket"]
        assert set(map(float, vllm_bounds)) <= set(bounds), name
        if name.endswith("_seconds"):
            assert min(bounds) < min(vllm_bounds), f"{name}: no bucket below vLLM's smallest"


def test_counters_moved_with_traffic(metrics_text):
    fams = families(metrics_text)

    def total(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in fams[name].samples
            if s.name == name + "_total" and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert total("vllm:request_success") >= 3
    assert total("vllm:generation_tokens") >= 11
    assert total("vllm:prompt_tokens") > 0
    assert total("vllm:prefix_cache_queries") > 0 and total("vllm:prefix_cache_hits") > 0
    assert total("tollgate_requests_rejected", reason="invalid_request") >= 1
    ttft_count = [
        s.value for s in fams["vllm:time_to_first_token_seconds"].samples if s.name.endswith("_count")
    ]
    assert ttft_count and ttft_count[0] >= 3


@pytest.mark.prometheus
@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed"
)
def test_promtool_parses_the_exposition(metrics_text):
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=metrics_text, capture_output=True, text=True
    )
    # Exit 3 means lint findings only; the one allowed finding is vLLM's own ':' in metric names.
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    findings = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert all(line.startswith("vllm:") and "should not contain ':'" in line for line in findings), findings

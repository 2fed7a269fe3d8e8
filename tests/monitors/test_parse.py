"""prometheus-client's parsers on captured-style expositions of vLLM, TGI and llama.cpp, and the figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from monitors.derive import History, increase
from monitors.figures import derive
from monitors.scrape import Scrape, metrics_url, parse
from tollgate.contracts import server_metrics as m

FIXTURES = Path(__file__).with_name("fixtures")


def _history(*names: str, step: float = 10.0) -> History:
    h = History(keep_s=600)
    for i, name in enumerate(names):
        samples, types = parse((FIXTURES / name).read_text())
        h.add(Scrape("t", 1000.0 + step * i, True, 0.01, samples, types))
    return h


def test_vllm_exposition_gives_every_server_figure():
    fig = {name: value for name, labels, value in derive(_history("vllm_t0.txt", "vllm_t1.txt"), 60)}
    assert fig["queue_depth"] == 9 and fig["requests_running"] == 16
    assert fig["kv_cache_usage"] == 0.8125
    assert fig["prompt_tokens_per_s"] == pytest.approx(20480 / 10)
    assert fig["generation_tokens_per_s"] == pytest.approx(5120 / 10)
    assert fig["preemptions_per_s"] == pytest.approx(0.4)
    assert fig["request_rate"] == pytest.approx((72 + 2 + 6) / 10)
    assert fig["error_rate"] == pytest.approx(6 / 80)  # finished_reason="abort"
    assert fig["prefix_cache_hit_rate"] == pytest.approx(10000 / 20000)
    assert fig["process_cpu_pct"] == pytest.approx(40.0)
    # 100 new TTFT observations in 10 s: 30 in (0.02, 0.04], 40 in (0.04, 0.06], 20 in (0.06, 0.08], 10 above
    assert fig["ttft_p50_s"] == pytest.approx(0.04 + 0.02 * (20 / 40))
    assert fig["ttft_p95_s"] == pytest.approx(0.08 + 0.02 * (5 / 10))
    assert fig["itl_p50_s"] < fig["itl_p95_s"] < fig["itl_p99_s"]
    assert {"e2e_p50_s", "e2e_p95_s", "e2e_p99_s"} <= set(fig)


def test_single_scrape_has_gauges_but_no_rates():
    names = {name for name, _, _ in derive(_history("vllm_t0.txt"), 60)}
    assert "queue_depth" in names and "kv_cache_usage" in names
    assert "request_rate" not in names and "ttft_p95_s" not in names


def test_tgi_and_llamacpp_expositions_map_to_the_same_figures():
    tgi = _history("tgi.txt", "tgi.txt")
    fig = {n: v for n, _, v in derive(tgi, 60)}
    assert fig["queue_depth"] == 2 and fig["requests_running"] == 7
    assert fig["request_rate"] == 0.0 and "error_rate" not in fig  # no traffic between identical scrapes
    llama = {n: v for n, _, v in derive(_history("llamacpp.txt"), 60)}
    assert llama == {"queue_depth": 1.0, "requests_running": 2.0, "kv_cache_usage": 0.3125}
    samples, types = parse((FIXTURES / "llamacpp.txt").read_text())
    assert types[m.family(m.LLAMACPP_PROMPT_TOKENS)] == "counter"
    assert samples[m.LLAMACPP_PREDICTED_TOKENS][()] == 20915


def test_openmetrics_exposition_is_parsed_and_created_samples_dropped():
    reg = CollectorRegistry()
    c = Counter("generation_tokens", "tokens", ["model_name"], registry=reg)
    h = Histogram("e2e_request_latency_seconds", "e2e", ["model_name"], buckets=[0.5, 1, 2], registry=reg)
    c.labels("m").inc(42)
    for v in (0.2, 0.7, 1.5, 3.0):
        h.labels("m").observe(v)
    samples, types = parse(openmetrics_latest(reg).decode(), "application/openmetrics-text; version=1.0.0")
    assert samples["generation_tokens_total"][(("model_name", "m"),)] == 42
    assert samples["e2e_request_latency_seconds_bucket"][(("le", "1.0"), ("model_name", "m"))] == 2
    assert not any(name.endswith("_created") for name in samples)
    assert types["e2e_request_latency_seconds"] == "histogram"


@pytest.mark.parametrize("bad", ['vllm:x{model_name="a" 1\n', "# TYPE x counter\nx one\n"])
def test_malformed_exposition_is_a_value_error(bad):
    with pytest.raises(ValueError, match="malformed exposition"):
        parse(bad)


def test_counter_reset_counts_the_new_value_as_increase():
    assert increase([10, 15, 3, 8]) == 5 + 3 + 5
    assert increase([5.0]) == 0.0


def test_metrics_url_defaults():
    assert metrics_url("127.0.0.1:8000") == "http://127.0.0.1:8000/metrics"
    assert metrics_url("https://h/x/metrics") == "https://h/x/metrics"

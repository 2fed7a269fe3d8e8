"""Prometheus metrics with vLLM's names, types, labels and buckets (prometheus-client).

Dashboards and alert rules written for vLLM work unchanged: the same families, the labels
`model_name` and `engine` ("0"), `finished_reason` on `vllm:request_success_total`, and vLLM's
bucket boundaries. Histograms add finer buckets below vLLM's smallest boundary (CPU latencies
of a tiny model live there); vLLM's boundaries are all kept, so `histogram_quantile` over a
vLLM-shaped query still works and a vLLM-bucketed view can be recomputed exactly.

Each server owns a CollectorRegistry (no global state), so several servers can share a process.
Engine state (running/waiting/KV usage, cumulative prefix-cache and preemption counts) is read
from `engine.stats()` at scrape time by a custom collector; per-request figures are observed as
requests progress and finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tollgate.contracts import server_metrics as sm
from tollgate.contracts.server_metrics import FINISH_REASONS, REJECT_REASONS, family

# vLLM's boundaries (vllm/v1/metrics/loggers.py).
VLLM_TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                     7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]  # fmt: skip
VLLM_ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                    10.0, 20.0, 40.0, 80.0]  # fmt: skip
VLLM_REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                                50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]  # fmt: skip

# Finer boundaries below vLLM's smallest one.
TTFT_BUCKETS = sorted([0.0001, 0.00025, 0.0005, *VLLM_TTFT_BUCKETS])
ITL_BUCKETS = sorted([0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, *VLLM_ITL_BUCKETS])
E2E_BUCKETS = sorted([0.005, 0.01, 0.025, 0.05, 0.1, 0.2, *VLLM_REQUEST_LATENCY_BUCKETS])
PHASE_BUCKETS = sorted(
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, *VLLM_REQUEST_LATENCY_BUCKETS]
)


def build_1_2_5_buckets(max_value: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to max_value, as vLLM builds its token-count buckets."""
    buckets, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return buckets
            buckets.append(value)
        exponent += 1


class _EngineStateCollector(Collector):
    """Scrape-time view of the engine scheduler and KV cache."""

    def __init__(self, stats: Callable[[], Any], labels: dict[str, str]) -> None:
        self.stats = stats
        self.labels = labels

    def _gauge(self, name: str, doc: str, value: float) -> Metric:
        family = GaugeMetricFamily(name, doc, labels=list(self.labels))
        family.add_metric(list(self.labels.values()), value)
        return family

    def _counter(self, name: str, doc: str, value: float) -> Metric:
        family = CounterMetricFamily(name, doc, labels=list(self.labels))
        family.add_metric(list(self.labels.values()), value)
        return family

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        s = self.stats()
        if s is None:
            return
        yield self._gauge(sm.VLLM_RUNNING, "Number of requests in model execution batches.", s.num_running)
        yield self._gauge(sm.VLLM_WAITING, "Number of requests waiting to be processed.", s.num_waiting)
        yield self._gauge(sm.VLLM_KV_USAGE, "KV-cache usage. 1 means 100 percent usage.", s.kv_cache_usage)
        yield self._counter(
            family(sm.VLLM_PREFIX_QUERIES),
            "Prefix cache queries, in terms of number of queried tokens.",
            s.prefix_cache_queries,
        )
        yield self._counter(
            family(sm.VLLM_PREFIX_HITS),
            "Prefix cache hits, in terms of number of cached tokens.",
            s.prefix_cache_hits,
        )
        yield self._counter(
            family(sm.VLLM_PREEMPTIONS),
            "Cumulative number of preemption from the engine.",
            s.num_preemptions,
        )


class ServerMetrics:
    """The registry of one server and the observations the request handlers make."""

    def __init__(self, model_name: str, max_model_len: int, stats: Callable[[], Any]) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.labels = {"model_name": model_name, "engine": "0"}
        names = list(self.labels)
        values = list(self.labels.values())
        token_buckets = build_1_2_5_buckets(max_model_len)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, names + list(extra), registry=reg)

        def histogram(name: str, doc: str, buckets: list[float]) -> Any:
            return Histogram(name, doc, names, buckets=buckets, registry=reg).labels(*values)

        self.prompt_tokens = counter(
            family(sm.VLLM_PROMPT_TOKENS), "Number of prefill tokens processed."
        ).labels(*values)
        self.generation_tokens = counter(
            family(sm.VLLM_GENERATION_TOKENS), "Number of generation tokens processed."
        ).labels(*values)
        self._success = counter(
            family(sm.VLLM_REQUEST_SUCCESS),
            "Count of successfully processed requests.",
            ("finished_reason",),
        )
        for reason in FINISH_REASONS:
            self._success.labels(*values, reason)
        self._rejected = counter(
            family(sm.REQUESTS_REJECTED),
            "Requests answered with an error before reaching the engine, by reason.",
            ("reason",),
        )
        for reason in REJECT_REASONS:
            self._rejected.labels(*values, reason)
        self.capture_dropped = counter(
            family(sm.CAPTURE_DROPPED), "Capture log records dropped because the writer fell behind."
        ).labels(*values)

        self.ttft = histogram(sm.VLLM_TTFT, "Histogram of time to first token in seconds.", TTFT_BUCKETS)
        self.itl = histogram(sm.VLLM_ITL, "Histogram of inter-token latency in seconds.", ITL_BUCKETS)
        self.e2e = histogram(sm.VLLM_E2E, "Histogram of e2e request latency in seconds.", E2E_BUCKETS)
        self.queue = histogram(
            sm.VLLM_QUEUE_TIME,
            "Histogram of time spent in WAITING phase for request.",
            PHASE_BUCKETS,
        )
        self.inference = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            PHASE_BUCKETS,
        )
        self.prefill = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            PHASE_BUCKETS,
        )
        self.decode = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            PHASE_BUCKETS,
        )
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", token_buckets
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", token_buckets
        )
        self.request_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", token_buckets
        )

        reg.register(_EngineStateCollector(stats, self.labels))
        process_collector.ProcessCollector(registry=reg)
        platform_collector.PlatformCollector(registry=reg)
        gc_collector.GCCollector(registry=reg)

    def reject(self, reason: str) -> None:
        self._rejected.labels(*self.labels.values(), reason).inc()

    def tokens(
        self, new_tokens: int, token_times: list[float], last_token_time: float | None
    ) -> float | None:
        """Count generated tokens and observe each inter-token gap; returns the new last token time."""
        if new_tokens:
            self.generation_tokens.inc(new_tokens)
        previous = last_token_time
        for t in token_times:
            if previous is not None:
                self.itl.observe(max(0.0, t - previous))
            previous = t
        return previous

    def finished(
        self,
        reason: str,
        times: Any,
        num_prompt_tokens: int,
        num_output_tokens: int,
        max_tokens: int | None,
    ) -> None:
        """Observe one finished request (`times` is the engine's RequestTimes)."""
        self._success.labels(*self.labels.values(), reason).inc()
        self.request_prompt_tokens.observe(num_prompt_tokens)
        self.request_generation_tokens.observe(num_output_tokens)
        if max_tokens:
            self.request_max_tokens.observe(max_tokens)
        end = times.finished or times.last_token
        if end is not None:
            self.e2e.observe(max(0.0, end - times.arrival))
        if times.first_scheduled is not None:
            self.queue.observe(max(0.0, times.first_scheduled - times.arrival))
            if end is not None:
                self.inference.observe(max(0.0, end - times.first_scheduled))
            if times.first_token is not None:
                self.prefill.observe(max(0.0, times.first_token - times.first_scheduled))
        if times.first_token is not None and end is not None:
            self.decode.observe(max(0.0, end - times.first_token))

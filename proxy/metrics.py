"""The proxy's own /metrics: what clients experienced, measured where it passes through.

Histograms of client-side TTFT and E2E (from the request reaching the proxy to the first token
arrival / the last byte relayed), request counts by status, relayed SSE events and upstream
failures. Names start with `tollgate_proxy_` so they never collide with the upstream's series
when both are scraped into one Prometheus.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from tollgate.contracts.server_metrics import CAPTURE_DROPPED, family

TTFT_METRIC = "tollgate_proxy_time_to_first_token_seconds"
E2E_METRIC = "tollgate_proxy_e2e_request_latency_seconds"
REQUESTS_METRIC = "tollgate_proxy_requests"
EVENTS_METRIC = "tollgate_proxy_relayed_events"
UPSTREAM_ERRORS_METRIC = "tollgate_proxy_upstream_errors"

# Sub-millisecond to minutes: loopback TTFTs of a few ms and long CPU generations both resolve.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)  # fmt: skip


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ttft = Histogram(
            TTFT_METRIC,
            "Client-side time to first token of streamed generations, seen at the proxy.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.e2e = Histogram(
            E2E_METRIC,
            "Client-side end-to-end latency of generation requests, seen at the proxy.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            REQUESTS_METRIC,
            "Requests relayed, by endpoint and the upstream's status code (502/504: the proxy's own).",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.events = Counter(
            EVENTS_METRIC, "SSE events relayed to clients.", ("endpoint",), registry=self.registry
        )
        self.upstream_errors = Counter(
            UPSTREAM_ERRORS_METRIC,
            "Upstream failures: connect (unreachable), timeout, stream (broke mid-response).",
            ("reason",),
            registry=self.registry,
        )
        self.capture_dropped = Counter(
            family(CAPTURE_DROPPED),
            "Capture log records dropped because the writer fell behind.",
            registry=self.registry,
        )

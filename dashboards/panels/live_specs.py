"""What the Live page plots: panels, their series and axis units, time ranges, refresh rates."""

RANGES = {"15 min": 900, "1 h": 3600, "6 h": 6 * 3600, "24 h": 86400, "7 d": 7 * 86400, "30 d": 30 * 86400}
REFRESH = {"off": None, "5 s": 5, "10 s": 10, "30 s": 30, "1 min": 60}
# panel title -> ({series name: legend label}, y-axis title with unit, multiplier from stored unit)
PANELS = {
    "Target up": ({"up": "up"}, "scrape ok (1) or failed (0)", 1),
    "Request rate": ({"request_rate": "requests"}, "requests/s", 1),
    "Error rate": ({"error_rate": "failed", "rejected_rate": "refused"}, "requests (%)", 100),
    "Tokens per second": (
        {"prompt_tokens_per_s": "prompt", "generation_tokens_per_s": "generated"},
        "tokens/s",
        1,
    ),
    "TTFT percentiles": (
        {"ttft_p50_s": "p50", "ttft_p95_s": "p95", "ttft_p99_s": "p99"},
        "time to first token (ms)",
        1000,
    ),
    "ITL percentiles": (
        {"itl_p50_s": "p50", "itl_p95_s": "p95", "itl_p99_s": "p99"},
        "inter-token latency (ms)",
        1000,
    ),
    "E2E percentiles": (
        {"e2e_p50_s": "p50", "e2e_p95_s": "p95", "e2e_p99_s": "p99"},
        "end-to-end latency (s)",
        1,
    ),
    "Queue depth and running": (
        {"queue_depth": "waiting", "requests_running": "running"},
        "requests (count)",
        1,
    ),
    "KV cache usage": ({"kv_cache_usage": "KV cache"}, "KV cache used (%)", 100),
    "Preemptions": ({"preemptions_per_s": "preemptions"}, "preemptions/s", 1),
    "Prefix cache hit rate": ({"prefix_cache_hit_rate": "hit rate"}, "hit rate (%)", 100),
}
GPU_PANELS = {
    "GPU utilization": ("gpu_util_pct", "utilization (%)", 1),
    "GPU memory used": ("gpu_mem_used_bytes", "framebuffer used (GiB)", 1 / 2**30),
    "GPU power": ("gpu_power_w", "power draw (W)", 1),
}

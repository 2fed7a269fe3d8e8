"""The contract's derived series (tollgate.contracts.monitor_store.SERIES_NAMES) from one target's history.

Each figure lists where it can come from, vLLM names first (the reference server uses them too), then
TGI and llama.cpp; the first source present in the scrape wins, so a target only yields the figures
its server exposes.
"""

from __future__ import annotations

from collections.abc import Callable

from monitors.derive import MIB, History, Matcher, bucket_increases, gauge, quantiles, rate
from monitors.scrape import Labels, Scrape

Row = tuple[str, dict[str, str], float]
Window = list[Scrape]

HISTOGRAMS = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "itl": (
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
        "tgi_request_mean_time_per_token_duration",
    ),
    "e2e": ("vllm:e2e_request_latency_seconds", "tgi_request_duration"),
}
GAUGES = {
    "queue_depth": ("vllm:num_requests_waiting", "tgi_queue_size", "llamacpp:requests_deferred"),
    "requests_running": (
        "vllm:num_requests_running",
        "tgi_batch_current_size",
        "llamacpp:requests_processing",
    ),
    "kv_cache_usage": (
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "llamacpp:kv_cache_usage_ratio",
    ),
    "host_cpu_pct": ("tollgate_host_cpu_percent",),
    "host_mem_used_bytes": ("tollgate_host_memory_used_bytes",),
    "process_rss_bytes": ("process_resident_memory_bytes", "tollgate_process_resident_memory_bytes"),
    "drift_detected": ("tollgate_drift_detected",),
}
RATES = {
    "prompt_tokens_per_s": (
        "vllm:prompt_tokens_total",
        "tgi_request_input_length_sum",
        "llamacpp:prompt_tokens_total",
    ),
    "generation_tokens_per_s": (
        "vllm:generation_tokens_total",
        "tgi_request_generated_tokens_sum",
        "llamacpp:tokens_predicted_total",
    ),
    "preemptions_per_s": ("vllm:num_preemptions_total",),
}
GPU = {  # contract name: (dcgm-exporter field, scale)
    "gpu_util_pct": ("DCGM_FI_DEV_GPU_UTIL", 1.0),
    "gpu_mem_used_bytes": ("DCGM_FI_DEV_FB_USED", MIB),
    "gpu_power_w": ("DCGM_FI_DEV_POWER_USAGE", 1.0),
    "gpu_temp_c": ("DCGM_FI_DEV_GPU_TEMP", 1.0),
}
ERROR_REASONS = Matcher.of(regex={"finished_reason": "abort|error"})


def _first(window: Window, names: tuple[str, ...], fn: Callable[[Window, str], dict]) -> float | None:
    last = window[-1].samples
    for name in names:
        if name in last:
            values = fn(window, name)
            return values.get((), None)
    return None


def _requests(window: Window) -> tuple[float, float] | None:
    """(finished requests/s, failed requests/s): vLLM finished reasons + reference-server rejects, or TGI."""
    last = window[-1].samples
    if "vllm:request_success_total" in last:
        total = rate(window, "vllm:request_success_total").get((), 0.0)
        failed = rate(window, "vllm:request_success_total", ERROR_REASONS).get((), 0.0)
        rejected = rate(window, "tollgate:requests_rejected_total").get((), 0.0)
        return total + rejected, failed + rejected
    if "tgi_request_count_total" in last:  # TGI's `tgi_request_count` counter, as the parser names it
        total = rate(window, "tgi_request_count_total").get((), 0.0)
        return total, rate(window, "tgi_request_failure_total").get((), 0.0)
    return None


def _by(values: dict[Labels, float], name: str) -> list[Row]:
    return [(name, dict(group), value) for group, value in sorted(values.items())]


def derive(history: History, window_s: float) -> list[Row]:
    """All figures for the newest scrape in `history`, rates and quantiles over `window_s`."""
    window = history.window(window_s)
    if not window:
        return []
    rows: list[Row] = []
    for figure, names in GAUGES.items():
        value = _first(window, names, gauge)
        if value is not None:
            rows.append((figure, {}, value))
    for figure, names in RATES.items():
        value = _first(window, names, rate)
        if value is not None:
            rows.append((figure, {}, value))
    requests = _requests(window)
    if requests is not None and len(window) >= 2:
        total, failed = requests
        rows.append(("request_rate", {}, total))
        if total > 0:
            rows.append(("error_rate", {}, failed / total))
    hits = rate(window, "vllm:prefix_cache_hits_total").get(())
    queries = rate(window, "vllm:prefix_cache_queries_total").get(())
    if hits is not None and queries:
        rows.append(("prefix_cache_hit_rate", {}, hits / queries))
    cpu = rate(window, "process_cpu_seconds_total").get(())
    if cpu is not None:
        rows.append(("process_cpu_pct", {}, cpu * 100))
    elif "tollgate_process_cpu_percent" in window[-1].samples:
        rows.append(("process_cpu_pct", {}, gauge(window, "tollgate_process_cpu_percent")[()]))
    for prefix, names in HISTOGRAMS.items():
        name = next((n for n in names if n + "_bucket" in window[-1].samples), None)
        if name is None:
            continue
        values = quantiles([0.5, 0.95, 0.99], bucket_increases(window, name))
        for q, per_group in values.items():
            if () in per_group:
                rows.append((f"{prefix}_p{round(q * 100)}_s", {}, per_group[()]))
    for figure, (field, scale) in GPU.items():
        rows += [(n, lab, v * scale) for n, lab, v in _by(gauge(window, field, by=("gpu",)), figure)]
    total = gauge(window, "DCGM_FI_DEV_FB_TOTAL", by=("gpu",))
    if not total:
        used, free = (
            gauge(window, "DCGM_FI_DEV_FB_USED", by=("gpu",)),
            gauge(window, "DCGM_FI_DEV_FB_FREE", by=("gpu",)),
        )
        total = {g: used[g] + free[g] for g in used if g in free}
    rows += [(n, lab, v * MIB) for n, lab, v in _by(total, "gpu_mem_total_bytes")]
    rows += _by(gauge(window, "tollgate_drift_score", by=("feature",), agg="max"), "drift_score")
    return rows


def scrape_rows(scrape: Scrape) -> list[Row]:
    return [("up", {}, 1.0 if scrape.up else 0.0), ("scrape_duration_s", {}, scrape.duration_s)]

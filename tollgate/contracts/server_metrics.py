"""Server metrics contract: the Prometheus names servers and exporters write and the monitors read.

One definition for both sides. The reference server builds its families from these names, `tollgate
monitor gpu` and `tollgate drift watch` their gauges, and the monitors (and the dashboard's Prometheus
queries, via tollgate.contracts.figures) read them. Names are the *sample* names a scrape shows, so a
counter carries its `_total`; prometheus-client wants the family name, which `family()` gives.

Other servers' names are listed as their servers expose them, checked against their sources:
vLLM 0.32 (vllm/v1/metrics/loggers.py; HTTP metrics from prometheus-fastapi-instrumentator 8.1, whose
`http_requests_total{handler, method, status}` groups status codes as "2xx", "4xx", "5xx" by default),
TGI (`tgi_request_count`, `tgi_request_failure{err}`) and llama.cpp (`llamacpp:*`, no request counters).
"""

from __future__ import annotations

# vLLM names (the reference server writes these too).
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_KV_USAGE = "vllm:kv_cache_usage_perc"
VLLM_GPU_CACHE_USAGE = "vllm:gpu_cache_usage_perc"  # vLLM before 0.10
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_PREEMPTIONS = "vllm:num_preemptions_total"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"  # label finished_reason
VLLM_PREFIX_QUERIES = "vllm:prefix_cache_queries_total"
VLLM_PREFIX_HITS = "vllm:prefix_cache_hits_total"
VLLM_TTFT = "vllm:time_to_first_token_seconds"
VLLM_ITL = "vllm:inter_token_latency_seconds"
VLLM_TPOT = "vllm:time_per_output_token_seconds"  # vLLM before 0.10
VLLM_E2E = "vllm:e2e_request_latency_seconds"
VLLM_QUEUE_TIME = "vllm:request_queue_time_seconds"
VLLM_ADMISSION_REJECTIONS = "vllm:admission_rejections_total"  # label reason; vLLM answers 503
# finished_reason values; "error" is vLLM's (always answered 500), "abort" a client disconnect or drain.
FINISH_REASONS = ("stop", "length", "abort")
FAILED_FINISH_REASONS = "abort|error"  # regular expression on finished_reason

# The reference server's own families.
REQUESTS_REJECTED = "tollgate_requests_rejected_total"  # label reason; answered before the engine
REJECT_REASONS = ("queue_full", "not_ready", "draining", "invalid_request", "unauthorized", "body_too_large")
CAPTURE_DROPPED = "tollgate_capture_dropped_records_total"

# Any FastAPI server instrumented with prometheus-fastapi-instrumentator (vLLM's API server).
HTTP_REQUESTS = "http_requests_total"  # labels handler, method, status ("2xx" or "200")
GENERATION_HANDLERS = "/v1/(chat/)?completions|/v1/responses|/v1/embeddings|/v1/messages|/invocations"
FAILED_STATUS = "[45].."  # matches "4xx"/"5xx" (grouped) and "429"/"503" (exact codes)
REFUSED_STATUS = "4.."

# TGI.
TGI_REQUESTS = "tgi_request_count_total"  # TGI's `tgi_request_count` counter, as the parser names it
TGI_FAILURES = "tgi_request_failure_total"  # label err
TGI_REFUSED_ERRORS = "validation|overloaded"
TGI_QUEUE = "tgi_queue_size"
TGI_BATCH = "tgi_batch_current_size"
TGI_INPUT_TOKENS = "tgi_request_input_length_sum"
TGI_GENERATED_TOKENS = "tgi_request_generated_tokens_sum"
TGI_TIME_PER_TOKEN = "tgi_request_mean_time_per_token_duration"
TGI_DURATION = "tgi_request_duration"

# llama.cpp server (--metrics).
LLAMACPP_DEFERRED = "llamacpp:requests_deferred"
LLAMACPP_PROCESSING = "llamacpp:requests_processing"
LLAMACPP_KV_USAGE = "llamacpp:kv_cache_usage_ratio"
LLAMACPP_PROMPT_TOKENS = "llamacpp:prompt_tokens_total"
LLAMACPP_PREDICTED_TOKENS = "llamacpp:tokens_predicted_total"

# dcgm-exporter's names (real dcgm-exporter or `tollgate monitor gpu`); label gpu; memory in MiB.
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_MEM_COPY_UTIL = "DCGM_FI_DEV_MEM_COPY_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
DCGM_FB_TOTAL = "DCGM_FI_DEV_FB_TOTAL"
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"
DCGM_TEMP = "DCGM_FI_DEV_GPU_TEMP"
DCGM_SM_CLOCK = "DCGM_FI_DEV_SM_CLOCK"
DCGM_MEM_CLOCK = "DCGM_FI_DEV_MEM_CLOCK"
DCGM_ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"

# `tollgate monitor gpu` host and process gauges; prometheus-client's process collector.
HOST_CPU = "tollgate_host_cpu_percent"
HOST_MEM_USED = "tollgate_host_memory_used_bytes"
HOST_MEM_TOTAL = "tollgate_host_memory_total_bytes"
GPU_AVAILABLE = "tollgate_gpu_available"
PROCESS_CPU = "tollgate_process_cpu_percent"
PROCESS_RSS = "tollgate_process_resident_memory_bytes"
CLIENT_PROCESS_CPU = "process_cpu_seconds_total"
CLIENT_PROCESS_RSS = "process_resident_memory_bytes"

# `tollgate drift watch` gauges.
DRIFT_SCORE = "tollgate_drift_score"  # label feature
DRIFT_P_VALUE = "tollgate_drift_p_value"
DRIFT_DETECTED = "tollgate_drift_detected"
DRIFT_SEQUENTIAL_LOG_E = "tollgate_drift_sequential_log_e"
DRIFT_LIVE_ROWS = "tollgate_drift_live_rows"


def family(sample_name: str) -> str:
    """The prometheus-client family name of a counter sample name (`x_total` -> `x`)."""
    return sample_name.removesuffix("_total")

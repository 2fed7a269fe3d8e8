"""Monitor store contract (monitors -> dashboards): one SQLite file, WAL mode.

Default path reports/monitor.db. The monitors own writes; readers (the dashboard) open it
read-only (`file:...?mode=ro`, uri=True) and must tolerate an empty or missing database.

Tables (DDL below):
  series      derived figures per target over time. `resolution` is the sample spacing in
              seconds of that row's tier (raw scrape interval, then downsampled tiers such as
              60 and 600); readers pick the coarsest tier that still gives enough points.
  alerts      one row per alert state change (pending/firing/resolved) with its fingerprint.
  silences    active and expired silences.
  outbox      one row per notification to deliver; status pending|retrying|delivered|failed.
  targets     last known state of each scrape target.

Series names (SERIES_NAMES) with units in the name; `labels` is a JSON object (sorted keys,
"{}" when none), e.g. {"gpu": "0"} for GPU series, {"feature": "prompt_tokens"} for drift.
"""

from __future__ import annotations

MONITOR_STORE_SCHEMA_VERSION = 1

SERIES_NAMES = {
    "up": "1 when the last scrape succeeded, else 0",
    "scrape_duration_s": "seconds the scrape took",
    "request_rate": "answered requests per second (finished by the engine or refused)",
    "error_rate": "fraction of requests that failed (0..1): refused (429, 503, 4xx), 5xx, engine abort/error",
    "rejected_rate": "fraction of requests the server refused before they reached the engine (0..1)",
    "prompt_tokens_per_s": "prompt tokens per second",
    "generation_tokens_per_s": "generated tokens per second",
    "ttft_p50_s": "time to first token, p50 over the window, seconds",
    "ttft_p95_s": "time to first token, p95, seconds",
    "ttft_p99_s": "time to first token, p99, seconds",
    "itl_p50_s": "inter-token latency p50, seconds",
    "itl_p95_s": "inter-token latency p95, seconds",
    "itl_p99_s": "inter-token latency p99, seconds",
    "e2e_p50_s": "end-to-end latency p50, seconds",
    "e2e_p95_s": "end-to-end latency p95, seconds",
    "e2e_p99_s": "end-to-end latency p99, seconds",
    "queue_depth": "requests waiting",
    "requests_running": "requests running",
    "kv_cache_usage": "KV cache usage (0..1)",
    "preemptions_per_s": "preemptions per second",
    "prefix_cache_hit_rate": "prefix cache hits / queries in tokens over the window (0..1)",
    "gpu_util_pct": "GPU utilization percent, label gpu",
    "gpu_mem_used_bytes": "GPU framebuffer used, bytes, label gpu",
    "gpu_mem_total_bytes": "GPU framebuffer total, bytes, label gpu",
    "gpu_power_w": "GPU power draw, watts, label gpu",
    "gpu_temp_c": "GPU temperature, Celsius, label gpu",
    "host_cpu_pct": "host CPU utilization percent",
    "host_mem_used_bytes": "host memory used, bytes",
    "process_cpu_pct": "server process CPU percent",
    "process_rss_bytes": "server process resident memory, bytes",
    "drift_score": "drift effect size per feature, label feature",
    "drift_detected": "1 when the last drift check decided drift",
}

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    ts REAL NOT NULL, target TEXT NOT NULL, name TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}', value REAL, resolution INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS series_lookup ON series (name, resolution, target, ts);
CREATE TABLE IF NOT EXISTS targets (
    target TEXT PRIMARY KEY, up INTEGER NOT NULL, last_scrape REAL, last_error TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL, state TEXT NOT NULL, severity TEXT, labels TEXT NOT NULL DEFAULT '{}',
    value REAL, threshold REAL, active_since REAL, summary TEXT, description TEXT
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, matchers TEXT NOT NULL, starts_at REAL NOT NULL,
    ends_at REAL NOT NULL, created_by TEXT, comment TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, receiver TEXT NOT NULL,
    fingerprint TEXT NOT NULL, state TEXT NOT NULL, dedup_key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, delivered_at REAL, last_error TEXT
);
"""

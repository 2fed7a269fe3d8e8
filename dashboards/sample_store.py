"""A monitor store (tollgate.contracts.monitor_store) filled with a realistic history.

Several targets scraped every 5 seconds with a diurnal load, raw samples plus the 60 s and
600 s tiers the contract describes, GPU series for the GPU hosts (none for the CPU host),
alert state changes, silences and a notification outbox in every delivery state, all written
through the monitor's own store and outbox (series in bulk with Store.write_rows: one transaction
per scrape, as the monitor writes, costs ~0.5 ms each, minutes for a week of samples).
"""

from __future__ import annotations

import json
import warnings
from itertools import repeat
from pathlib import Path

import numpy as np

from monitors.outbox import Outbox
from monitors.store import ALERT_COLUMNS, Store

TARGET_NAMES = (
    "vllm-prod:8000",
    "vllm-canary:8000",
    "reference-cpu:8000",
    "tgi-staging:8080",
    "llamacpp-edge:8080",
)
GPUS_PER_TARGET = (2, 1, 0, 1, 0)
STEP_S = 5
RAW = 0  # the monitors store raw samples as resolution 0 ("at the scrape interval")
TIERS = (60, 600)
SECRET_WEBHOOK = "https://hooks.slack.com/services/T0SAMPLE/B0SAMPLE/sampleSecretToken123"


def _smooth_noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    walk = np.cumsum(rng.normal(0, 1, n))
    kernel = np.ones(60) / 60
    return scale * (np.convolve(walk - walk.mean(), kernel, mode="same") / max(walk.std(), 1e-9))


def target_series(t: np.ndarray, idx: int, rng: np.random.Generator) -> dict[tuple[str, str], np.ndarray]:
    """Series name and labels -> values for one target (shapes loosely follow a vLLM server)."""
    n = t.size
    phase = 2 * np.pi * (t / 86400.0 - 0.35)
    load = np.clip(
        0.5 + 0.35 * np.sin(phase) + _smooth_noise(rng, n, 0.05) + rng.normal(0, 0.03, n), 0.02, 1.2
    )
    peak = (60.0, 15.0, 2.0, 8.0, 1.0)[idx % 5]
    rate = peak * load
    up = np.ones(n)
    if idx == 0:  # a 5-minute outage two days ago
        down = (t > t[-1] - 2 * 86400) & (t < t[-1] - 2 * 86400 + 300)
        up[down] = 0
    if idx == 3:  # staging went down ten minutes ago and is still down
        up[t > t[-1] - 600] = 0
    sat = np.clip(load - 0.8, 0, None)
    ttft50 = 0.06 + 0.05 * load + 1.5 * sat**2
    itl50 = 0.012 + 0.006 * load
    e2e50 = ttft50 + itl50 * 110
    s: dict[tuple[str, str], np.ndarray] = {
        ("up", "{}"): up,
        ("scrape_duration_s", "{}"): 0.004 + rng.exponential(0.002, n),
        ("request_rate", "{}"): rate,
        ("error_rate", "{}"): np.clip(0.002 + 0.05 * sat + rng.exponential(0.001, n), 0, 1),
        ("rejected_rate", "{}"): np.clip(0.04 * sat, 0, 1),
        ("prompt_tokens_per_s", "{}"): rate * 420 * rng.uniform(0.9, 1.1, n),
        ("generation_tokens_per_s", "{}"): rate * 110 * rng.uniform(0.9, 1.1, n),
        ("queue_depth", "{}"): rng.poisson(40 * sat).astype(float),
        ("requests_running", "{}"): np.round(rate * e2e50),
        ("kv_cache_usage", "{}"): np.clip(0.15 + 0.7 * load**2 + rng.normal(0, 0.02, n), 0, 1),
        ("preemptions_per_s", "{}"): rng.poisson(3 * sat) / STEP_S,
        ("prefix_cache_hit_rate", "{}"): np.clip(
            0.45 + 0.1 * np.sin(phase / 3) + rng.normal(0, 0.03, n), 0, 1
        ),
        ("host_cpu_pct", "{}"): np.clip(20 + 50 * load + rng.normal(0, 3, n), 0, 100),
        ("host_mem_used_bytes", "{}"): 48e9 + 4e9 * load,
        ("process_cpu_pct", "{}"): np.clip(15 + 60 * load, 0, 100),
        ("process_rss_bytes", "{}"): 9e9 + 1e8 * load,
    }
    for metric, base in (("ttft", ttft50), ("itl", itl50), ("e2e", e2e50)):
        for q, mult in (("p50", 1.0), ("p95", 2.2), ("p99", 3.5)):
            s[(f"{metric}_{q}_s", "{}")] = base * mult * rng.uniform(0.92, 1.08, n)
    for g in range(GPUS_PER_TARGET[idx % 5]):
        labels = json.dumps({"gpu": str(g)})
        util = np.clip(100 * load * (0.95 - 0.05 * g) + rng.normal(0, 2, n), 0, 100)
        s[("gpu_util_pct", labels)] = util
        s[("gpu_mem_total_bytes", labels)] = np.full(n, 80e9)
        s[("gpu_mem_used_bytes", labels)] = 62e9 + 8e9 * np.clip(load, 0, 1)
        s[("gpu_power_w", labels)] = 90 + 5.8 * util
        s[("gpu_temp_c", labels)] = 38 + 0.4 * util
    for key, values in s.items():
        if key[0] != "up":
            values[up == 0] = np.nan  # nothing derived while the target is unreachable
    return s


def _tier(t: np.ndarray, v: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    k = res // STEP_S
    m = (t.size // k) * k
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN buckets during outages stay NaN
        return t[:m:k], np.nanmean(v[:m].reshape(-1, k), axis=1)


def _alerts(end: float, names: list[str]) -> list[tuple]:
    rows = []

    def episode(rule, target, sev, start, firing_for, value, threshold, summary, resolved=True):
        fp = f"{rule}:{target}"
        labels = json.dumps({"alertname": rule, "severity": sev, "target": target}, sort_keys=True)
        base = (fp, rule, None, sev, labels, value, threshold, start, summary, f"{summary} on {target}")
        rows.append((start,) + base[:2] + ("pending",) + base[3:])
        rows.append((start + 60,) + base[:2] + ("firing",) + base[3:])
        if resolved:
            rows.append((start + 60 + firing_for,) + base[:2] + ("resolved",) + base[3:])

    for day in range(6, 0, -1):
        episode(
            "HighTTFTp95",
            names[0],
            "warning",
            end - day * 86400 + 3600,
            1500 + 300 * day,
            1.4,
            1.0,
            "TTFT p95 above 1 s",
        )
    episode("KVCacheNearlyFull", names[0], "warning", end - 5 * 3600, 900, 0.97, 0.95, "KV cache above 95%")
    if len(names) > 3:
        episode("TargetDown", names[3], "critical", end - 600, 0, 0, 1, "target unreachable", resolved=False)
    episode(
        "DriftDetected",
        "drift",
        "warning",
        end - 3 * 3600,
        0,
        0.5,
        0.1,
        "prompt_tokens drifted",
        resolved=False,
    )
    return sorted(rows)


def _outbox(alert_rows: list[tuple], end: float) -> list[tuple]:
    rows = []
    notify = [r for r in alert_rows if r[3] in ("firing", "resolved")]
    for i, (ts, fp, _rule, state, *_rest) in enumerate(notify):
        key = f"slack-oncall|{fp}|{state}|{ts}"
        payload = json.dumps({"webhook_url": SECRET_WEBHOOK, "text": f"[{state.upper()}] {fp}"})
        status, attempts, delivered, error = "delivered", 1, ts + 0.4, None
        if i == len(notify) - 1:
            status, attempts, delivered, error = "retrying", 3, None, f"HTTP 503 from {SECRET_WEBHOOK}"
        elif i == len(notify) - 2:
            status, attempts, delivered, error = (
                "failed",
                8,
                None,
                "HTTP 404: no_service (Authorization: Bearer xoxb-sample-token)",
            )
        elif i == len(notify) - 3:
            status, attempts, delivered, error = "pending", 0, None, None
        rows.append(
            (
                ts,
                "slack-oncall",
                fp,
                state,
                key,
                payload,
                status,
                attempts,
                min(ts + 30, end),
                delivered,
                error,
            )
        )
    return rows


def write_store(path: Path, end: float, days: float = 7.0, n_targets: int = 3) -> Path:
    """Create `path` with `days` of 5-second samples for `n_targets` targets ending at `end`, written
    through the monitor's own store (monitors.store.Store) and notification outbox."""
    store = Store(path)
    t = np.arange(end - days * 86400, end, STEP_S, dtype=float) + STEP_S
    names = [TARGET_NAMES[i % len(TARGET_NAMES)] for i in range(n_targets)]
    for idx, target in enumerate(names):
        series = target_series(t, idx, np.random.default_rng(100 + idx))
        for (name, labels), values in sorted(series.items()):
            for res, (ts, vs) in [(RAW, (t, values))] + [(r, _tier(t, values, r)) for r in TIERS]:
                vals = vs.tolist()  # SQLite stores NaN as NULL
                store.write_rows(
                    zip(ts.tolist(), repeat(target), repeat(name), repeat(labels), vals, repeat(res))
                )
        up_now = bool(series[("up", "{}")][-1])
        store.set_target(target, up_now, end, None if up_now else "connection refused")
    alert_rows = _alerts(end, names)
    with store.tx() as db:
        for row in alert_rows:
            alert = dict(zip(ALERT_COLUMNS, row, strict=True))
            Store.insert_alert(db, alert | {"labels": json.loads(alert["labels"])})
    store.add_silence(
        [["alertname", "=", "DriftDetected"]],
        end - 3600,
        end + 7200,
        "ops@example.com",
        "known traffic shift; reference profile refresh scheduled",
    )
    store.add_silence(
        [{"name": "target", "value": names[0], "isEqual": True, "isRegex": False}],  # Alertmanager's form
        end - 3 * 86400,
        end - 3 * 86400 + 3600,
        "ops@example.com",
        "maintenance window",
    )
    outbox = Outbox(store)
    for ts, receiver, fp, state, key, payload, status, attempts, next_at, delivered, error in _outbox(
        alert_rows, end
    ):
        outbox.enqueue(receiver, fp, state, key, json.loads(payload), now=ts)
        row_id = store.query("SELECT id FROM outbox WHERE dedup_key = ?", (key,))[0]["id"]
        if status == "delivered":
            outbox.mark_delivered(row_id, now=delivered)
        retries = {"retrying": attempts, "failed": attempts - 1}.get(status, 0)
        for _ in range(retries):
            outbox.mark_retry(row_id, next_at, error)
        if status == "failed":
            outbox.mark_failed(row_id, error)
    store.close()
    return path

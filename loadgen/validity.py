"""Is the generator itself the bottleneck? Watch its CPU and event-loop lag.

A greenlet sleeps SAMPLE_S and measures how late it wakes up: that lateness is the event-loop
lag, and it is also how late chunk timestamps can be. psutil samples the process CPU once a
second. A run is `client_bound` when any generator process averaged >= CPU_LIMIT_PCT of one core
or its loop lag p95 reached LAG_LIMIT_MS (more than 5% of wake-ups late by 10 ms): then the
figures describe the client, not the server. The first WARMUP_S (users starting) are not judged.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import numpy as np
import psutil

SAMPLE_S = 0.05
CPU_LIMIT_PCT = 90.0
LAG_LIMIT_MS = 10.0
WARMUP_S = 1.0


class ValidityMonitor:
    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.cpu_pct: list[float] = []
        self._greenlets: list[gevent.Greenlet] = []

    def start(self) -> None:
        self._greenlets = [gevent.spawn(self._watch_loop), gevent.spawn(self._watch_cpu)]

    def stop(self) -> None:
        gevent.killall(self._greenlets, block=False)
        self._greenlets = []

    def _watch_loop(self) -> None:
        gevent.sleep(WARMUP_S)
        while True:
            start = time.perf_counter()
            gevent.sleep(SAMPLE_S)
            self.lags_ms.append(max(0.0, (time.perf_counter() - start - SAMPLE_S) * 1000.0))

    def _watch_cpu(self) -> None:
        process = psutil.Process()
        gevent.sleep(WARMUP_S)
        process.cpu_percent(None)
        while True:
            gevent.sleep(1.0)
            self.cpu_pct.append(process.cpu_percent(None))

    def figures(self) -> dict[str, Any]:
        return figures(self.lags_ms, self.cpu_pct)


def figures(lags_ms: list[float], cpu_pct: list[float]) -> dict[str, Any]:
    lags = np.asarray(lags_ms or [0.0])
    cpu = np.asarray(cpu_pct or [0.0])
    out = {
        "loop_lag_ms_p50": round(float(np.percentile(lags, 50)), 3),
        "loop_lag_ms_p95": round(float(np.percentile(lags, 95)), 3),
        "loop_lag_ms_p99": round(float(np.percentile(lags, 99)), 3),
        "loop_lag_ms_max": round(float(lags.max()), 3),
        "cpu_pct_mean": round(float(cpu.mean()), 1),
        "cpu_pct_max": round(float(cpu.max()), 1),
        "samples": len(lags_ms),
    }
    out["client_bound"] = bool(out["cpu_pct_mean"] >= CPU_LIMIT_PCT or out["loop_lag_ms_p95"] >= LAG_LIMIT_MS)
    return out


def combine(per_process: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run's validity block: client_bound if any generator process was."""
    bound = sorted(name for name, f in per_process.items() if f.get("client_bound"))
    return {
        "client_bound": bool(bound),
        "client_bound_processes": bound,
        "thresholds": {"cpu_pct_mean": CPU_LIMIT_PCT, "loop_lag_ms_p95": LAG_LIMIT_MS},
        "processes": per_process,
    }

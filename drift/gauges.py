"""The gauges `drift watch` serves on /metrics (names from tollgate.contracts.server_metrics).

They are the watch's only output besides the result files: the monitor's `DriftDetected` rule fires on
`tollgate_drift_detected`, and the dashboard reads the scores.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from tollgate.contracts import server_metrics as names


class Gauges:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.score = Gauge(
            names.DRIFT_SCORE,
            "drift effect size per feature (latest check)",
            ["feature"],
            registry=self.registry,
        )
        self.p_value = Gauge(
            names.DRIFT_P_VALUE,
            "adjusted p-value per feature (latest check)",
            ["feature"],
            registry=self.registry,
        )
        self.detected = Gauge(
            names.DRIFT_DETECTED, "1 while a drift alarm stands, else 0", registry=self.registry
        )
        self.log_e = Gauge(
            names.DRIFT_SEQUENTIAL_LOG_E,
            "sequential detector statistic (alarm at log ARL)",
            registry=self.registry,
        )
        self.live_rows = Gauge(
            names.DRIFT_LIVE_ROWS, "rows in the latest checked window", registry=self.registry
        )

    def update(self, result: dict[str, Any], detected: bool, log_e: float) -> None:
        rows = result["features"] + ([result["multivariate"]] if result["multivariate"] else [])
        for r in rows:
            if r["status"] != "decided":  # no stale value for a feature this window could not decide
                for gauge in (self.score, self.p_value):
                    with contextlib.suppress(KeyError):
                        gauge.remove(r["feature"])
            else:
                self.score.labels(r["feature"]).set(
                    r["effect_size"] if r["effect_size"] is not None else r["statistic"]
                )
                if r["p_adjusted"] is not None:
                    self.p_value.labels(r["feature"]).set(r["p_adjusted"])
        self.detected.set(1 if detected else 0)
        self.log_e.set(log_e)
        self.live_rows.set(result["window"]["n_live"])

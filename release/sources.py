"""Per-interval samples of a deployment's figures over a window: from the monitor store or Prometheus.

A TARGET names one deployment. In the monitor store it is the scrape target exactly as `tollgate
monitor --target` was given (e.g. http://10.0.0.5:8000). For Prometheus it is a label matcher list
such as `job="llm-canary"` or `instance="10.0.0.5:8000"`; a bare host:port (or URL) means
`instance="host:port"`.

The store is read through tollgate.contracts.monitor_store only (read-only SQLite URI). The
Prometheus client is a few lines over httpx and /api/v1/query_range; the PromQL mirrors the store's
series (same names, same vLLM-compatible metrics), one sample per `step`.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path

import httpx

from tollgate.contracts.monitor_store import SERIES_NAMES


class SourceError(ValueError):
    """The source cannot answer (missing store, unknown target, Prometheus error)."""


ERRORS = 'finished_reason=~"abort|error"'
FINISHED = "sum(rate(vllm:request_success_total{{{sel}}}[{rw}]))"
REJECTED = "sum(rate(tollgate_requests_rejected_total{{{sel}}}[{rw}]))"
HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds_bucket",
    "itl": "vllm:inter_token_latency_seconds_bucket",
    "e2e": "vllm:e2e_request_latency_seconds_bucket",
}
PROMQL = {
    **{
        f"{kind}_p{q}_s": f"histogram_quantile(0.{q}, sum by (le) (rate({metric}{{{{{{sel}}}}}}[{{rw}}])))"
        for kind, metric in HISTOGRAMS.items()
        for q in (50, 95, 99)
    },
    "error_rate": f"sum(rate(vllm:request_success_total{{{{{{sel}},{ERRORS}}}}}[{{rw}}])) / {FINISHED}",
    "rejection_rate": f"{REJECTED} / ({REJECTED} + {FINISHED})",
    "request_rate": FINISHED,
    "generation_tokens_per_s": "sum(rate(vllm:generation_tokens_total{{{sel}}}[{rw}]))",
    "drift_score": "max(tollgate_drift_score{{{sel}}})",
}
assert set(PROMQL) - {"rejection_rate"} <= set(SERIES_NAMES), "PromQL names must be store series names"


def _finite(values: list[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


class StoreSource:
    """The monitor's SQLite store, opened read-only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(
                f"--store {self.path}: no such file; run `tollgate monitor --store {self.path}` first"
            )
        self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def targets(self) -> list[str]:
        try:
            return [r[0] for r in self.db.execute("SELECT target FROM targets ORDER BY target")]
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"--store {self.path}: not a monitor store ({exc})") from None

    def check_target(self, target: str) -> str:
        """The target's name in the store: as given, or a base URL whose /metrics was scraped."""
        known = self.targets()
        for name in (target, target.rstrip("/") + "/metrics"):
            if name in known:
                return name
        raise SourceError(
            f"target '{target}' is not in the store {self.path}; known targets: {', '.join(known) or 'none'}"
        )

    def samples(self, target: str, name: str, start: float, end: float, min_samples: int) -> list[float]:
        """Values of a series per scrape (labelled series: the max over labels), finest tier that has enough."""
        tiers = [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT resolution FROM series WHERE name = ? AND target = ? ORDER BY resolution",
                (name, target),
            )
        ]
        values: list[float] = []
        for resolution in tiers:
            rows = self.db.execute(
                "SELECT MAX(value) FROM series WHERE name = ? AND target = ? AND resolution = ?"
                " AND ts BETWEEN ? AND ? GROUP BY ts ORDER BY ts",
                (name, target, resolution, start, end),
            ).fetchall()
            values = _finite([r[0] for r in rows])
            if len(values) >= min_samples:
                break
        return values


def selector(target: str) -> str:
    """PromQL label matchers for a TARGET (see the module docstring)."""
    if "=" in target:
        return target
    hostport = re.sub(r"^[a-z]+://", "", target).split("/", 1)[0]
    return f'instance="{hostport}"'


class PrometheusSource:
    """Prometheus' HTTP API (/api/v1/query_range), one sample per step."""

    def __init__(self, url: str, step_s: float, rate_window: str, timeout_s: float = 10.0) -> None:
        if not re.match(r"^https?://[^/\s]+", url):
            raise SourceError(f"--prometheus '{url}' must look like http://HOST:9090")
        self.url, self.step_s, self.rate_window = url.rstrip("/"), step_s, rate_window
        self.client = httpx.Client(timeout=timeout_s)

    def check_target(self, target: str) -> str:
        query = f"count(up{{{selector(target)}}})"
        result = self._get("/api/v1/query", {"query": query})
        if not result:
            raise SourceError(f"Prometheus at {self.url} has no series matching {{{selector(target)}}}")
        return target

    def samples(self, target: str, name: str, start: float, end: float, min_samples: int) -> list[float]:
        if name not in PROMQL:
            return []
        query = PROMQL[name].format(sel=selector(target), rw=self.rate_window)
        result = self._get(
            "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": self.step_s}
        )
        return _finite([float(v) for _, v in result[0]["values"]]) if result else []

    def _get(self, path: str, params: dict) -> list[dict]:
        try:
            resp = self.client.get(self.url + path, params=params)
            body = resp.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise SourceError(f"Prometheus at {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200 or body.get("status") != "success":
            raise SourceError(
                f"Prometheus at {self.url} answered {resp.status_code}: {body.get('error', body)}"
            )
        return body["data"]["result"]

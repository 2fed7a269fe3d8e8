"""Per-interval samples of a deployment's figures over a window: from the monitor store or Prometheus.

A TARGET names one deployment. In the monitor store it is the scrape target exactly as `tollgate
monitor --target` was given (e.g. http://10.0.0.5:8000). For Prometheus it is a label matcher list
such as `job="llm-canary"` or `instance="10.0.0.5:8000"`; a bare host:port (or URL) means
`instance="host:port"`.

The store is read through tollgate.contracts.monitor_store only (read-only SQLite URI). The
Prometheus client is a few lines over httpx and /api/v1/query_range; each figure's PromQL is the
monitor's own (tollgate.contracts.figures.promql, the same definition the embedded monitor evaluates
into the store and the Prometheus export records), so both sources judge the same figures, one
sample per `step`.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from pathlib import Path

import httpx

from tollgate.contracts.figures import promql as figure_promql
from tollgate.contracts.monitor_store import SERIES_NAMES


class SourceError(ValueError):
    """The source cannot answer (missing store, unknown target, Prometheus error)."""


def promql(name: str, target: str, rate_window: str) -> str | None:
    """The monitor's own definition of figure `name` (tollgate.contracts.figures) over the TARGET's
    series, folded into one value per step (a deployment's replicas together); None if not a figure."""
    if name not in SERIES_NAMES:
        return None
    try:
        return figure_promql(name, rate_window, group=(), match=selector(target))
    except KeyError:  # a store series without a figure definition (none today)
        return None


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
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's read-only connection (the webhook judges calls in worker threads at once)."""
        if getattr(self._local, "db", None) is None:
            self._local.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self._local.db

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
        query = promql(name, target, self.rate_window)
        if query is None:
            return []
        result = self._get(
            "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": self.step_s}
        )
        # labelled figures (drift_score by feature): the max over labels per step, as the store reads them
        steps: dict[float, float] = {}
        for series in result:
            for ts, v in series["values"]:
                value = float(v)
                if math.isfinite(value):
                    steps[float(ts)] = max(steps.get(float(ts), value), value)
        return [steps[ts] for ts in sorted(steps)]

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

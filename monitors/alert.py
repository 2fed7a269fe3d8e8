"""The alert model: one alert at one state change, and the fingerprint that names an alert.

Its one home. Alert evaluation (`alerting`) builds alerts, the renderers (`slack`, `webhook`) turn them
into messages and delivery (`notify`) queues and sends those; this module imports none of them, so
imports run one way: alerting -> notify -> slack, webhook -> alert. `monitors.notify` re-exports `Alert`
for callers that import it from there.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field


def fingerprint(labels: dict[str, str]) -> str:
    """Stable short hash of a label set (alertname included): the identity of one alert instance."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Alert:
    """One alert at one state change. `labels` identify it (with `rule`); the rest describes it."""

    rule: str
    state: str  # "firing" | "resolved"
    labels: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    threshold: float | None = None
    comparison: str = ">"
    active_since: float = field(default_factory=time.time)
    severity: str = "warning"
    summary: str = ""
    description: str = ""
    runbook_url: str | None = None
    ts: float = field(default_factory=time.time)
    repeat: int = 0  # 0: the state change itself; n: the n-th "still firing" reminder

    @property
    def fingerprint(self) -> str:
        return fingerprint({"alertname": self.rule, **self.labels})

    @property
    def dedup_key(self) -> str:
        """Names one message of one episode: a second notify of the same state change queues nothing."""
        return f"{self.fingerprint}:{self.state}:{self.active_since:.3f}:{self.repeat}"

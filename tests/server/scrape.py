"""Reading /metrics with prometheus_client's own parser."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(client: httpx.Client, sample_name: str, **labels: str) -> float:
    """The value of one sample (labels given must match; others are ignored)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {sample_name} {labels} in /metrics")


def wait_for(
    client: httpx.Client, sample_name: str, expected: float, timeout: float = 30.0, **labels: str
) -> float:
    """Poll until the sample equals `expected` (bounded wait); returns the last value seen."""
    deadline = time.monotonic() + timeout
    seen = value(client, sample_name, **labels)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = value(client, sample_name, **labels)
    return seen

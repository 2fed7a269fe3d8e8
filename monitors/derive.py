"""From raw scrapes to the figures people watch (the contract's SERIES_NAMES).

Counters become rates over a window with Prometheus' counter-reset rule (a drop means the process
restarted, so the new value is all increase). Rates are increase / elapsed time between the first and
last sample in the window, without PromQL's extrapolation to the window edges; the quantile of bucket
increases is unaffected because the same factor scales every bucket. Quantiles use PromQL's
`histogram_quantile` algorithm exactly (checked against promtool in tests/monitors/test_quantile.py).

Several servers are understood: vLLM (and Tollgate's reference server, same names), TGI and llama.cpp;
the first name found per figure wins. GPU series come from dcgm-exporter names (real dcgm-exporter or
`tollgate monitor gpu`), host/process series from `tollgate monitor gpu` or prometheus_client defaults.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

from monitors.scrape import Labels, Scrape


@dataclass(frozen=True)
class Matcher:
    """Label matchers: `eq` exact values, `regex` full-match regular expressions (PromQL's = and =~)."""

    eq: tuple[tuple[str, str], ...] = ()
    regex: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def of(eq: dict[str, str] | None = None, regex: dict[str, str] | None = None) -> Matcher:
        return Matcher(tuple(sorted((eq or {}).items())), tuple(sorted((regex or {}).items())))

    def matches(self, labels: Labels) -> bool:
        if not self.eq and not self.regex:
            return True
        d = dict(labels)
        if any(d.get(k, "") != v for k, v in self.eq):
            return False
        return all(re.fullmatch(v, d.get(k, "")) for k, v in self.regex)

    def promql(self, extra: dict[str, str] | None = None) -> str:
        parts = [f'{k}="{v}"' for k, v in self.eq] + [f'{k}=~"{v}"' for k, v in self.regex]
        parts += [f'{k}="{v}"' for k, v in (extra or {}).items()]
        return "{" + ", ".join(parts) + "}" if parts else ""


ANY = Matcher()


@dataclass
class History:
    """The recent successful scrapes of one target, trimmed to `keep_s` seconds."""

    keep_s: float
    scrapes: deque[Scrape] = field(default_factory=deque)

    def add(self, scrape: Scrape) -> None:
        if scrape.up:
            self.scrapes.append(scrape)
        while self.scrapes and self.scrapes[0].ts < scrape.ts - self.keep_s:
            self.scrapes.popleft()

    def window(self, seconds: float, now: float | None = None) -> list[Scrape]:
        if not self.scrapes:
            return []
        end = self.scrapes[-1].ts if now is None else now
        return [s for s in self.scrapes if s.ts >= end - seconds - 1e-9]

    @property
    def last(self) -> Scrape | None:
        return self.scrapes[-1] if self.scrapes else None


def increase(values: list[float]) -> float:
    """Counter increase over consecutive samples; a drop is a reset (the new value counts in full)."""
    total = 0.0
    for prev, cur in zip(values, values[1:], strict=False):
        total += cur - prev if cur >= prev else cur
    return total


def _series_increases(window: list[Scrape], name: str, match: Matcher) -> dict[Labels, float]:
    """Increase of every series of `name` over the window, walking consecutive scrapes pairwise
    (a series has an increase once it appears in two consecutive scrapes)."""
    out: dict[Labels, float] = {}
    prev: dict[Labels, float] | None = None
    for s in window:
        cur = s.samples.get(name)
        if cur is None:
            continue
        if prev is not None:
            for key, value in cur.items():
                before = prev.get(key)
                if before is not None:
                    out[key] = out.get(key, 0.0) + (value - before if value >= before else value)
        prev = cur
    if match is ANY or (not match.eq and not match.regex):
        return out
    return {k: v for k, v in out.items() if match.matches(k)}


def rate(
    window: list[Scrape], name: str, match: Matcher = ANY, by: tuple[str, ...] = ()
) -> dict[Labels, float]:
    """sum by (by) (rate(name{match}[window])), per group; empty when under two samples."""
    if len(window) < 2:
        return {}
    elapsed = window[-1].ts - window[0].ts
    out: dict[Labels, float] = {}
    for key, inc in _series_increases(window, name, match).items():
        group = tuple((k, v) for k, v in key if k in by)
        out[group] = out.get(group, 0.0) + inc / elapsed
    return out


def gauge(window: list[Scrape], name: str, match: Matcher = ANY, by: tuple[str, ...] = (), agg: str = "sum"):
    """agg by (by) (name{match}) at the newest scrape."""
    if not window:
        return {}
    groups: dict[Labels, list[float]] = {}
    for key, value in window[-1].samples.get(name, {}).items():
        if match.matches(key):
            groups.setdefault(tuple((k, v) for k, v in key if k in by), []).append(value)
    fn = {"sum": sum, "max": max, "min": min, "avg": lambda v: sum(v) / len(v)}[agg]
    return {g: fn(v) for g, v in groups.items()}


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile on cumulative (upper bound, count) buckets."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    merged: dict[float, float] = {}
    for le, count in buckets:  # coalesce duplicate bounds (e.g. "1" and "1.0")
        merged[le] = merged.get(le, 0.0) + count
    bs = sorted(merged.items())
    if not bs or not math.isinf(bs[-1][0]):
        return math.nan
    running = -math.inf  # counts must not decrease with the bound (precision loss, scrape races)
    bs = [(le, running := max(running, c)) for le, c in bs]
    if len(bs) < 2:
        return math.nan
    observations = bs[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(bs) - 1) if bs[i][1] >= rank), len(bs) - 1)
    if b == len(bs) - 1:
        return bs[-2][0]
    if b == 0 and bs[0][0] <= 0:
        return bs[0][0]
    start, end, count = 0.0, bs[b][0], bs[b][1]
    if b > 0:
        start = bs[b - 1][0]
        count -= bs[b - 1][1]
        rank -= bs[b - 1][1]
    return start + (end - start) * _div(rank, count)


def _div(a: float, b: float) -> float:
    """IEEE division as Go does it (x/0 is +-Inf, 0/0 is NaN), where Python would raise."""
    if b != 0:
        return a / b
    return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)


def bucket_increases(
    window: list[Scrape], base: str, match: Matcher = ANY, by: tuple[str, ...] = ()
) -> dict[Labels, dict[float, float]]:
    """sum by (le, by) (increase(base_bucket{match}[window])) as {group: {upper bound: increase}}."""
    per_group: dict[Labels, dict[float, float]] = {}
    for key, inc in _series_increases(window, base + "_bucket", match).items():
        le = dict(key).get("le")
        if le is None:
            continue
        buckets = per_group.setdefault(tuple((k, v) for k, v in key if k in by), {})
        buckets[float(le)] = buckets.get(float(le), 0.0) + inc
    return per_group


def quantiles(
    qs: list[float], per_group: dict[Labels, dict[float, float]]
) -> dict[float, dict[Labels, float]]:
    """Each q's quantile per group of bucket increases; groups with no observations are left out."""
    out: dict[float, dict[Labels, float]] = {q: {} for q in qs}
    for group, buckets in per_group.items():
        for q in qs:
            value = bucket_quantile(q, list(buckets.items()))
            if not math.isnan(value):
                out[q][group] = value
    return out


def histogram_quantile(
    q: float, window: list[Scrape], base: str, match: Matcher = ANY, by: tuple[str, ...] = ()
):
    """histogram_quantile(q, sum by (le, by) (rate(base_bucket{match}[window]))) per group."""
    return quantiles([q], bucket_increases(window, base, match, by))[q]

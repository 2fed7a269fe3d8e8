"""One alert rule (`Rule`) and how it is evaluated over a target's scrape history.

The vocabulary of rules (kinds, comparison operators, severities, message templates) is defined here;
`monitors.rules` parses a rules file into these objects and `monitors.export` writes them as Prometheus
rules, so the two agree on what a rule can say.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field

from monitors.derive import ANY, History, Matcher, gauge, histogram_quantile, rate
from monitors.figures import figure
from monitors.scrape import Labels, Scrape

KINDS = ("gauge", "rate", "ratio", "quantile", "up", "drift", "figure")
OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
TEMPLATE = re.compile(r"{{\s*(value|threshold|target|labels\.[A-Za-z_][A-Za-z0-9_]*)\s*}}")


@dataclass(frozen=True)
class Term:
    """One metric a rule reads, with the label matchers that select its series."""

    metric: str
    match: Matcher = ANY


@dataclass
class Rule:
    """One alert rule as parsed from a rules file; `kind` says which terms and options it uses."""

    name: str
    kind: str
    op: str
    threshold: float
    for_s: float = 0.0
    window_s: float = 60.0
    terms: tuple[Term, ...] = ()  # the metric, or the numerator of a ratio
    denominator: tuple[Term, ...] = ()
    q: float = 0.95
    of: str = "rate"
    agg: str = "max"
    by: tuple[str, ...] = ()
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    description: str = ""
    runbook_url: str | None = None
    source: str = ""

    def evaluate(self, history: History, last: Scrape | None) -> dict[Labels, float]:
        """The expression's value per group of `by` labels for one target (no group when no data)."""
        if self.kind == "up":
            return {} if last is None else {(): 1.0 if last.up else 0.0}
        window = history.window(self.window_s)
        if last is None or not last.up or not window:
            return {}
        t = self.terms[0]
        if self.kind in ("gauge", "drift"):
            return gauge(window, t.metric, t.match, self.by, self.agg)
        if self.kind == "rate":
            return rate(window, t.metric, t.match, self.by)
        if self.kind == "quantile":
            return histogram_quantile(self.q, window, t.metric, t.match, self.by)
        if self.kind == "figure":
            return figure(window, t.metric) or {}
        num, den = (
            _sum(window, self.terms, self.of, self.by),
            _sum(window, self.denominator, self.of, self.by),
        )
        return {g: num.get(g, 0.0) / d for g, d in den.items() if d > 0}

    def ready(self, history: History, last: Scrape | None) -> bool:
        """False while a live target's history is too short to compute the expression (just after a
        monitor start): alert states are then held, not resolved."""
        if self.kind == "up" or last is None or not last.up:
            return last is not None
        needed = 1 if self.kind in ("gauge", "drift") or (self.kind == "ratio" and self.of == "gauge") else 2
        return len(history.window(self.window_s)) >= needed

    def breached(self, value: float) -> bool:
        return not math.isnan(value) and OPS[self.op](value, self.threshold)

    def render(self, template: str, value: float, labels: dict[str, str]) -> str:
        def sub(m: re.Match) -> str:
            key = m.group(1)
            if key == "value":
                return f"{value:.4g}"
            if key == "threshold":
                return f"{self.threshold:g}"
            if key == "target":
                return labels.get("target", "")
            return labels.get(key.split(".", 1)[1], "")

        return TEMPLATE.sub(sub, template)


def _sum(window: list[Scrape], terms: tuple[Term, ...], of: str, by: tuple[str, ...]) -> dict[Labels, float]:
    """Sum of terms, each a rate or a gauge summed by `by`; a group needs every term (like PromQL's +)."""
    parts = [
        rate(window, t.metric, t.match, by) if of == "rate" else gauge(window, t.metric, t.match, by, "sum")
        for t in terms
    ]
    common = set(parts[0]).intersection(*parts[1:])
    return {g: sum(p[g] for p in parts) for g in common}

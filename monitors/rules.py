"""Alert rules from one YAML file: parsing with file:line errors, and evaluation over a target's history.

    rules:
      - name: TTFTP95OverSLO
        kind: quantile            # gauge | rate | ratio | quantile | up | drift | figure
        metric: vllm:time_to_first_token_seconds
        q: 0.95
        window: 1m
        op: ">"                   # > >= < <= == !=
        threshold: 2.0
        for: 1m
        severity: warning
        labels: {team: serving}
        summary: "TTFT p95 {{ value }}s on {{ target }} (SLO {{ threshold }}s)"
        runbook_url: https://example.org/runbooks/ttft

`figure` alerts on a derived figure (`metric: error_rate`, any name of tollgate.contracts.figures.FIGURES),
computed as the monitor stores it for whichever server the target is (vLLM, TGI, the reference server).
`ratio` takes `numerator` and `denominator` (a term or a list of terms summed: {metric, match, match_re})
and `of: rate|gauge`; `gauge` takes `agg: max|min|sum|avg`; every kind takes `match`, `match_re` and `by`
(labels kept apart, e.g. [gpu]). Templates may use {{ value }}, {{ threshold }}, {{ target }} and
{{ labels.NAME }} only, so the same text works in the generated Prometheus rules.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitors.derive import ANY, History, Matcher, gauge, histogram_quantile, rate
from monitors.figures import figure
from monitors.scrape import Labels, Scrape
from tollgate.contracts.figures import FIGURES
from tollgate.contracts.server_metrics import DRIFT_SCORE

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
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
FIELDS = {
    *("name", "kind", "metric", "q", "window", "op", "threshold", "for", "severity", "labels", "summary"),
    *("description", "runbook_url", "numerator", "denominator", "of", "agg", "by", "match", "match_re"),
}


class RuleError(ValueError):
    """A rules file problem, message formatted as 'file:line: rules[i].field: what; how to fix'."""


def parse_duration(text: str | int | float, where: str = "duration") -> float:
    """'500ms', '5s', '1m', '2h', '1d' or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"{where}: {text!r} is negative")
        return float(text)
    m = DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"{where}: {text!r} is not a duration; write e.g. 500ms, 5s, 1m, 2h")
    return float(m.group(1)) * UNITS[m.group(2)]


@dataclass(frozen=True)
class Term:
    metric: str
    match: Matcher = ANY


@dataclass
class Rule:
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


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key (as __lines__)."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__lines__"] = {k.value: k.start_mark.line + 1 for k, _ in node.value}
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def load_rules(path: str | Path) -> list[Rule]:
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(), Loader=_LineLoader)
    except OSError as exc:
        raise RuleError(f"{path}: cannot read rules file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RuleError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_rules(doc, str(path))


def parse_rules(doc: Any, filename: str = "<rules>") -> list[Rule]:
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{filename}:1: expected a mapping with a 'rules:' list of rules")
    rules, seen = [], set()
    for i, raw in enumerate(doc["rules"]):
        if not isinstance(raw, dict):
            raise RuleError(
                f"{filename}: rules[{i}]: each rule must be a mapping with name, kind, op, threshold"
            )
        rule = _parse_rule(raw, filename, i)
        if rule.name in seen:
            raise RuleError(
                f"{rule.source}: rules[{i}].name: duplicate rule name {rule.name!r}; names must be unique"
            )
        seen.add(rule.name)
        rules.append(rule)
    return rules


def _parse_rule(raw: dict, filename: str, i: int) -> Rule:
    lines = raw.get("__lines__", {})

    def err(key: str, msg: str) -> RuleError:
        return RuleError(f"{filename}:{lines.get(key, raw.get('__line__', '?'))}: rules[{i}].{key}: {msg}")

    unknown = sorted(set(raw) - FIELDS - {"__lines__", "__line__"})
    if unknown:
        raise err(unknown[0], f"unknown field; allowed: {', '.join(sorted(FIELDS))}")
    for key in ("name", "kind", "op", "threshold"):
        if key not in raw:
            raise err(key, "missing; every rule needs name, kind, op and threshold")
    name, kind = raw["name"], raw["kind"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise err("name", f"{name!r} must be an identifier like TTFTP95OverSLO (letters, digits, _)")
    if kind not in KINDS:
        raise err("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if raw["op"] not in OPS:
        raise err("op", f"{raw['op']!r} is not one of {' '.join(OPS)}")
    threshold = raw["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise err("threshold", f"{threshold!r} must be a number")
    if raw.get("severity", "warning") not in SEVERITIES:
        raise err("severity", f"{raw['severity']!r} is not one of {', '.join(SEVERITIES)}")
    try:
        for_s = parse_duration(raw.get("for", 0), "for")
        window_s = parse_duration(raw.get("window", "1m"), "window")
    except ValueError as exc:
        key = "for" if str(exc).startswith("for") else "window"
        raise err(key, str(exc).split(": ", 1)[1]) from None
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(v, (str, int, float)) for k, v in labels.items() if k[:2] != "__"
    ):
        raise err("labels", "must be a mapping of label name to string value")
    for key in ("summary", "description"):
        text = raw.get(key, "")
        for m in re.finditer(r"{{(.*?)}}", text):
            if not TEMPLATE.fullmatch(m.group(0)):
                raise err(
                    key,
                    f"template {m.group(0)!r} not allowed; use {{{{ value }}}}, {{{{ threshold }}}}, "
                    "{{ target }} or {{ labels.NAME }}",
                )

    def term(spec: Any, key: str) -> Term:
        if isinstance(spec, str):
            return Term(spec)
        if not isinstance(spec, dict) or not isinstance(spec.get("metric"), str):
            raise err(key, "must be a metric name or a mapping with 'metric' (and optional match, match_re)")
        return Term(spec["metric"], _matcher(spec, err, key))

    def terms(key: str) -> tuple[Term, ...]:
        spec = raw.get(key)
        if spec is None:
            raise err(key, f"missing; a {kind} rule needs '{key}'")
        return tuple(term(s, key) for s in (spec if isinstance(spec, list) else [spec]))

    rule_terms: tuple[Term, ...] = ()
    denominator: tuple[Term, ...] = ()
    if kind == "ratio":
        rule_terms, denominator = terms("numerator"), terms("denominator")
        if raw.get("of", "rate") not in ("rate", "gauge"):
            raise err("of", "must be 'rate' or 'gauge'")
    elif kind == "drift":
        rule_terms = (Term(raw.get("metric", DRIFT_SCORE), _matcher(raw, err, "match")),)
    elif kind == "figure":
        if raw.get("metric") not in FIGURES:
            raise err("metric", f"{raw.get('metric')!r} is not a derived figure; one of {', '.join(FIGURES)}")
        rule_terms = (Term(raw["metric"]),)
    elif kind != "up":
        if not isinstance(raw.get("metric"), str):
            raise err("metric", f"missing; a {kind} rule needs the metric name")
        rule_terms = (Term(raw["metric"], _matcher(raw, err, "match")),)
    q = raw.get("q", 0.95)
    if kind == "quantile" and (not isinstance(q, (int, float)) or not 0 <= q <= 1):
        raise err("q", f"{q!r} must be a number between 0 and 1")
    agg = raw.get("agg", "max")
    if agg not in ("max", "min", "sum", "avg"):
        raise err("agg", f"{agg!r} is not one of max, min, sum, avg")
    by = raw.get("by", ["feature"] if kind == "drift" else [])
    if not isinstance(by, list) or not all(isinstance(b, str) for b in by):
        raise err("by", "must be a list of label names, e.g. [gpu]")
    return Rule(
        name=name,
        kind=kind,
        op=raw["op"],
        threshold=float(threshold),
        for_s=for_s,
        window_s=window_s,
        terms=rule_terms,
        denominator=denominator,
        q=float(q),
        of=raw.get("of", "rate"),
        agg=agg,
        by=tuple(by),
        severity=raw.get("severity", "warning"),
        labels={k: str(v) for k, v in labels.items() if not k.startswith("__")},
        summary=raw.get("summary", ""),
        description=raw.get("description", ""),
        runbook_url=raw.get("runbook_url"),
        source=f"{filename}:{raw.get('__line__', '?')}",
    )


def _matcher(spec: dict, err, key: str) -> Matcher:
    eq, regex = spec.get("match") or {}, spec.get("match_re") or {}
    for name, value in (("match", eq), ("match_re", regex)):
        if not isinstance(value, dict):
            raise err(key, f"{name} must be a mapping of label name to value")
    for k, v in regex.items():
        if k.startswith("__"):
            continue
        try:
            re.compile(str(v))
        except re.error as exc:
            raise err(key, f"match_re.{k}: {v!r} is not a valid regular expression ({exc})") from None
    clean = lambda d: {k: str(v) for k, v in d.items() if not k.startswith("__")}  # noqa: E731
    return Matcher.of(clean(eq), clean(regex))

"""Alert rules from one YAML file, parsed with file:line errors into `monitors.rule.Rule`s.

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

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from monitors.derive import Matcher
from monitors.rule import KINDS, OPS, SEVERITIES, TEMPLATE, Rule, Term
from tollgate.contracts.durations import parse_duration
from tollgate.contracts.figures import FIGURES
from tollgate.contracts.server_metrics import DRIFT_SCORE

# The rule model lives in monitors.rule; these names stay importable from here.
__all__ = ["KINDS", "OPS", "SEVERITIES", "TEMPLATE", "Rule", "RuleError", "Term"]
__all__ += ["load_rules", "parse_duration", "parse_rules"]

FIELDS = {
    *("name", "kind", "metric", "q", "window", "op", "threshold", "for", "severity", "labels", "summary"),
    *("description", "runbook_url", "numerator", "denominator", "of", "agg", "by", "match", "match_re"),
}


class RuleError(ValueError):
    """A rules file problem, message formatted as 'file:line: rules[i].field: what; how to fix'."""


_Err = Callable[[str, str], RuleError]  # err(field, what) -> the RuleError to raise


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
    """One rule mapping as a Rule; the checks run in a fixed order and the first problem is raised."""
    err = _errors(raw, filename, i)
    _check_fields(raw, err)
    _check_identity(raw, err)
    kind = raw["kind"]
    for_s, window_s = _durations(raw, err)
    labels = _labels(raw, err)
    _check_texts(raw, err)
    rule_terms, denominator = _terms(raw, kind, err)
    q, agg, by = _options(raw, kind, err)
    return Rule(
        name=raw["name"],
        kind=kind,
        op=raw["op"],
        threshold=float(raw["threshold"]),
        for_s=for_s,
        window_s=window_s,
        terms=rule_terms,
        denominator=denominator,
        q=float(q),
        of=raw.get("of", "rate"),
        agg=agg,
        by=tuple(by),
        severity=raw.get("severity", "warning"),
        labels=labels,
        summary=raw.get("summary", ""),
        description=raw.get("description", ""),
        runbook_url=raw.get("runbook_url"),
        source=f"{filename}:{raw.get('__line__', '?')}",
    )


def _errors(raw: dict, filename: str, i: int) -> _Err:
    """err(key, what) -> 'file:line: rules[i].key: what', at the key's line (the rule's when it is missing)."""
    lines = raw.get("__lines__", {})

    def err(key: str, msg: str) -> RuleError:
        return RuleError(f"{filename}:{lines.get(key, raw.get('__line__', '?'))}: rules[{i}].{key}: {msg}")

    return err


def _check_fields(raw: dict, err: _Err) -> None:
    unknown = sorted(set(raw) - FIELDS - {"__lines__", "__line__"})
    if unknown:
        raise err(unknown[0], f"unknown field; allowed: {', '.join(sorted(FIELDS))}")
    for key in ("name", "kind", "op", "threshold"):
        if key not in raw:
            raise err(key, "missing; every rule needs name, kind, op and threshold")


def _check_identity(raw: dict, err: _Err) -> None:
    """name, kind, op, threshold and severity: what every rule is, whatever its kind."""
    name, kind, op = raw["name"], raw["kind"], raw["op"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise err("name", f"{name!r} must be an identifier like TTFTP95OverSLO (letters, digits, _)")
    if kind not in KINDS:
        raise err("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(op, str) or op not in OPS:
        raise err("op", f"{op!r} is not one of {' '.join(OPS)}")
    threshold = raw["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise err("threshold", f"{threshold!r} must be a number")
    if raw.get("severity", "warning") not in SEVERITIES:
        raise err("severity", f"{raw['severity']!r} is not one of {', '.join(SEVERITIES)}")


def _durations(raw: dict, err: _Err) -> tuple[float, float]:
    """(for, window) in seconds."""
    try:
        for_s = parse_duration(raw.get("for", 0), "for")
        window_s = parse_duration(raw.get("window", "1m"), "window")
    except ValueError as exc:
        key = "for" if str(exc).startswith("for") else "window"
        raise err(key, str(exc).split(": ", 1)[1]) from None
    return for_s, window_s


def _labels(raw: dict, err: _Err) -> dict[str, str]:
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in _user_keys(labels).items()
    ):
        raise err("labels", "must be a mapping of label name to string value")
    return {k: str(v) for k, v in _user_keys(labels).items()}


def _check_texts(raw: dict, err: _Err) -> None:
    """summary and description use only the templates the generated Prometheus rules can render too."""
    for key in ("summary", "description"):
        text = raw.get(key, "")
        if not isinstance(text, str):
            raise err(key, f"{text!r} must be a string (quote it)")
        for m in re.finditer(r"{{(.*?)}}", text):
            if not TEMPLATE.fullmatch(m.group(0)):
                raise err(
                    key,
                    f"template {m.group(0)!r} not allowed; use {{{{ value }}}}, {{{{ threshold }}}}, "
                    "{{ target }} or {{ labels.NAME }}",
                )
    url = raw.get("runbook_url")
    if url is not None and not isinstance(url, str):
        raise err("runbook_url", f"{url!r} must be a URL string")


def _terms(raw: dict, kind: str, err: _Err) -> tuple[tuple[Term, ...], tuple[Term, ...]]:
    """What a rule of `kind` reads: (the metric or a ratio's numerator terms, a ratio's denominator terms)."""
    if kind == "ratio":
        numerator, denominator = (
            _term_list(raw, "numerator", kind, err),
            _term_list(raw, "denominator", kind, err),
        )
        if raw.get("of", "rate") not in ("rate", "gauge"):
            raise err("of", "must be 'rate' or 'gauge'")
        return numerator, denominator
    if kind == "up":
        return (), ()
    if kind == "drift":
        metric = raw.get("metric", DRIFT_SCORE)
        if not isinstance(metric, str):
            raise err("metric", f"{metric!r} must be a metric name (default {DRIFT_SCORE})")
        return (Term(metric, _matcher(raw, err, "match")),), ()
    if kind == "figure":
        metric = raw.get("metric")
        if not isinstance(metric, str) or metric not in FIGURES:
            raise err("metric", f"{metric!r} is not a derived figure; one of {', '.join(FIGURES)}")
        return (Term(metric),), ()
    if not isinstance(raw.get("metric"), str):
        raise err("metric", f"missing; a {kind} rule needs the metric name")
    return (Term(raw["metric"], _matcher(raw, err, "match")),), ()


def _term_list(raw: dict, key: str, kind: str, err: _Err) -> tuple[Term, ...]:
    """A ratio side: one term or a list of terms (summed), each a metric name or {metric, match, match_re}."""
    spec = raw.get(key)
    if spec is None:
        raise err(key, f"missing; a {kind} rule needs '{key}'")
    terms = []
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, str):
            terms.append(Term(item))
        elif isinstance(item, dict) and isinstance(item.get("metric"), str):
            terms.append(Term(item["metric"], _matcher(item, err, key)))
        else:
            raise err(key, "must be a metric name or a mapping with 'metric' (and optional match, match_re)")
    return tuple(terms)


def _options(raw: dict, kind: str, err: _Err) -> tuple[float, str, list[str]]:
    """(q, agg, by): the quantile, the gauge aggregation and the labels kept apart."""
    q = raw.get("q", 0.95)
    if kind == "quantile" and (isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 1):
        raise err("q", f"{q!r} must be a number between 0 and 1")
    agg = raw.get("agg", "max")
    if agg not in ("max", "min", "sum", "avg"):
        raise err("agg", f"{agg!r} is not one of max, min, sum, avg")
    by = raw.get("by", ["feature"] if kind == "drift" else [])
    if not isinstance(by, list) or not all(isinstance(b, str) for b in by):
        raise err("by", "must be a list of label names, e.g. [gpu]")
    return q, agg, by


def _user_keys(mapping: dict) -> dict:
    """`mapping` without the loader's __lines__/__line__ bookkeeping."""
    return {k: v for k, v in mapping.items() if not (isinstance(k, str) and k.startswith("__"))}


def _matcher(spec: dict, err: _Err, key: str) -> Matcher:
    eq, regex = spec.get("match") or {}, spec.get("match_re") or {}
    for name, value in (("match", eq), ("match_re", regex)):
        if not isinstance(value, dict):
            raise err(key, f"{name} must be a mapping of label name to value")
    for k, v in _user_keys(regex).items():
        try:
            re.compile(str(v))
        except re.error as exc:
            raise err(key, f"match_re.{k}: {v!r} is not a valid regular expression ({exc})") from None
    return Matcher.of(
        {str(k): str(v) for k, v in _user_keys(eq).items()},
        {str(k): str(v) for k, v in _user_keys(regex).items()},
    )

"""Rules files: the shipped defaults load, and every mistake names file:line, field and the fix."""

from __future__ import annotations

import pytest

from monitors.cli import DEFAULT_RULES
from monitors.rules import RuleError, load_rules, parse_duration

GOOD = """rules:
  - name: Slow
    kind: quantile
    metric: vllm:time_to_first_token_seconds
    q: 0.9
    window: 30s
    op: ">"
    threshold: 1.5
    for: 500ms
    labels: {team: serving}
    summary: "p90 {{ value }} over {{ threshold }} on {{ target }} gpu {{ labels.gpu }}"
"""


def _load(tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules(path)


def test_default_rules_cover_the_llm_serving_alerts():
    names = {r.name for r in load_rules(DEFAULT_RULES)}
    assert names == {
        "TTFTP95OverSLO", "ITLP95OverSLO", "HighErrorRate", "QueueBackingUp", "KVCacheNearFull",
        "PreemptionsRising", "TargetDown", "GPUMemoryNearFull", "DriftDetected", "HighRejectionRate",
    }  # fmt: skip


def test_a_good_rule_parses_and_renders(tmp_path):
    (rule,) = _load(tmp_path, GOOD)
    assert (rule.q, rule.window_s, rule.for_s, rule.threshold) == (0.9, 30.0, 0.5, 1.5)
    text = rule.render(rule.summary, 2.25, {"target": "http://a/metrics", "gpu": "1"})
    assert text == "p90 2.25 over 1.5 on http://a/metrics gpu 1"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "kind: quantile",
            "kind: percentile",
            r"rules\.yaml:3: rules\[0\]\.kind: 'percentile' is not one of",
        ),
        ('op: ">"', 'op: "=>"', r"rules\.yaml:7: rules\[0\]\.op: '=>' is not one of"),
        (
            "threshold: 1.5",
            "threshold: high",
            r"rules\.yaml:8: rules\[0\]\.threshold: 'high' must be a number",
        ),
        (
            "for: 500ms",
            "for: 5 minutes",
            r"rules\.yaml:9: rules\[0\]\.for: '5 minutes' is not a duration; write e\.g\.",
        ),
        ("q: 0.9", "q: 95", r"rules\.yaml:5: rules\[0\]\.q: 95 must be a number between 0 and 1"),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    treshold: 2\n",
            r"rules\.yaml:6: rules\[0\]\.treshold: unknown field",
        ),
        (
            "{{ labels.gpu }}",
            "{{ $labels.gpu }}",
            r"rules\[0\]\.summary: template '\{\{ \$labels\.gpu \}\}' not allowed",
        ),
        (
            "    metric: vllm:time_to_first_token_seconds\n",
            "",
            r"rules\[0\]\.metric: missing; a quantile rule needs",
        ),
        (
            "kind: quantile\n    metric: vllm:time_to_first_token_seconds",
            "kind: figure\n    metric: errors",
            r"rules\.yaml:4: rules\[0\]\.metric: 'errors' is not a derived figure; one of .*rejected_rate",
        ),
        (
            "name: Slow",
            "name: slow-ttft",
            r"rules\.yaml:2: rules\[0\]\.name: 'slow-ttft' must be an identifier like TTFTP95OverSLO",
        ),
        ('    op: ">"\n', "", r"rules\.yaml:2: rules\[0\]\.op: missing; every rule needs name, kind, op"),
        ('op: ">"', 'op: [">"]', r"rules\.yaml:7: rules\[0\]\.op: \['>'\] is not one of"),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    severity: urgent\n",
            r"rules\.yaml:6: rules\[0\]\.severity: 'urgent' is not one of info, warning, critical",
        ),
        ("window: 30s", "window: soon", r"rules\.yaml:6: rules\[0\]\.window: 'soon' is not a duration"),
        ("{team: serving}", "[team]", r"rules\.yaml:10: rules\[0\]\.labels: must be a mapping of label name"),
        ("{team: serving}", "{1: serving}", r"rules\.yaml:10: rules\[0\]\.labels: must be a mapping"),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    description: 42\n",
            r"rules\.yaml:6: rules\[0\]\.description: 42 must be a string",
        ),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    runbook_url: 7\n",
            r"rules\.yaml:6: rules\[0\]\.runbook_url: 7 must be a URL string",
        ),
        ("q: 0.9", "q: true", r"rules\.yaml:5: rules\[0\]\.q: True must be a number between 0 and 1"),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    agg: median\n",
            r"rules\.yaml:6: rules\[0\]\.agg: 'median' is not one of max, min, sum, avg",
        ),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    by: gpu\n",
            r"rules\.yaml:6: rules\[0\]\.by: must be a list of label names",
        ),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    match: [model_name]\n",
            r"rules\.yaml:6: rules\[0\]\.match: match must be a mapping of label name to value",
        ),
        (
            "    q: 0.9\n",
            "    q: 0.9\n    match_re: {model_name: '(('}\n",
            r"rules\[0\]\.match: match_re\.model_name: '\(\(' is not a valid regular expression",
        ),
        (
            "kind: quantile\n    metric: vllm:time_to_first_token_seconds",
            "kind: ratio\n    numerator: vllm:request_success_total",
            r"rules\.yaml:2: rules\[0\]\.denominator: missing; a ratio rule needs 'denominator'",
        ),
        (
            "kind: quantile\n    metric: vllm:time_to_first_token_seconds",
            "kind: ratio\n    numerator: [{match: {a: b}}]\n    denominator: d",
            r"rules\.yaml:4: rules\[0\]\.numerator: must be a metric name or a mapping with 'metric'",
        ),
        (
            "kind: quantile\n    metric: vllm:time_to_first_token_seconds",
            "kind: ratio\n    numerator: n\n    denominator: d\n    of: count",
            r"rules\.yaml:6: rules\[0\]\.of: must be 'rate' or 'gauge'",
        ),
        (
            "kind: quantile\n    metric: vllm:time_to_first_token_seconds",
            "kind: drift\n    metric: 5",
            r"rules\.yaml:4: rules\[0\]\.metric: 5 must be a metric name \(default tollgate_drift_score\)",
        ),
        (
            "kind: quantile\n    metric: vllm:time_to_first_token_seconds",
            "kind: figure\n    metric: [error_rate]",
            r"rules\.yaml:4: rules\[0\]\.metric: \['error_rate'\] is not a derived figure",
        ),
    ],
)
def test_mistakes_are_reported_with_file_line_and_field(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(RuleError, match=message):
        _load(tmp_path, GOOD.replace(old, new))


def test_structural_errors(tmp_path):
    with pytest.raises(RuleError, match=r"rules\.yaml:\d+: invalid YAML"):
        _load(tmp_path, "rules:\n  - name: [unclosed\n")
    with pytest.raises(RuleError, match="expected a mapping with a 'rules:' list"):
        _load(tmp_path, "- name: x\n")
    with pytest.raises(RuleError, match=r"rules\[1\]\.name: duplicate rule name 'Slow'"):
        _load(tmp_path, GOOD + GOOD.split("rules:\n", 1)[1])
    with pytest.raises(RuleError, match=r"rules\[0\]: each rule must be a mapping with name, kind, op"):
        _load(tmp_path, "rules:\n  - just a string\n")
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_durations():
    assert parse_duration("250ms") == 0.25 and parse_duration("2h") == 7200 and parse_duration(3) == 3.0
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 sec")

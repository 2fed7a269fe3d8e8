"""Hand-over to real Prometheus and Alertmanager: prometheus.yml, rules.yml (PromQL generated from the
same rule definitions the embedded monitor evaluates) and alertmanager.yml with a Slack receiver.

Prometheus names a target by its `instance` label where the embedded monitor says `target`, so
`{{ target }}` in templates becomes `{{ $labels.instance }}`. Webhook URLs are secrets: the generated
Alertmanager config reads them from files (`api_url_file`), never inlines them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from monitors.rule import TEMPLATE, Rule, Term
from monitors.scrape import metrics_url
from tollgate.contracts.durations import format_duration as go_duration
from tollgate.contracts.figures import FIGURES
from tollgate.contracts.figures import promql as figure_promql
from tollgate.contracts.files import write_text_atomic

JOB = "tollgate"


def _selector(t: Term, suffix: str = "") -> str:
    return f"{t.metric}{suffix}{t.match.promql()}"


def promql(rule: Rule) -> str:
    """The rule's expression and comparison in PromQL, grouped by instance (and the rule's `by`)."""
    by = ", ".join(["instance", *rule.by])
    w = go_duration(rule.window_s)
    t = rule.terms[0] if rule.terms else None
    if rule.kind == "up":
        expr = f'up{{job=~"{JOB}.*"}}'
    elif rule.kind in ("gauge", "drift"):
        expr = f"{rule.agg} by ({by}) ({_selector(t)})"
    elif rule.kind == "rate":
        expr = f"sum by ({by}) (rate({_selector(t)}[{w}]))"
    elif rule.kind == "figure":
        expr = f"({figure_promql(t.metric, w)})"
    elif rule.kind == "quantile":
        expr = f"histogram_quantile({rule.q:g}, sum by ({by}, le) (rate({_selector(t, '_bucket')}[{w}])))"
    else:

        def side(terms: tuple[Term, ...]) -> str:
            inner = [f"rate({_selector(x)}[{w}])" if rule.of == "rate" else _selector(x) for x in terms]
            return " + ".join(f"sum by ({by}) ({i})" for i in inner)

        expr = f"({side(rule.terms)}) / ({side(rule.denominator)})"
    return f"{expr} {rule.op} {rule.threshold:g}"


def go_template(text: str, rule: Rule) -> str:
    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key == "value":
            return '{{ $value | printf "%.4g" }}'
        if key == "threshold":
            return f"{rule.threshold:g}"
        if key == "target":
            return "{{ $labels.instance }}"
        return "{{ $labels." + key.split(".", 1)[1] + " }}"

    return TEMPLATE.sub(sub, text)


RECORD_PREFIX = "tollgate:"


def recording_rules(window_s: float) -> dict:
    """Every derived figure as a recording rule `tollgate:<figure>` (rates over the monitor's window),
    so Grafana panels and ad-hoc queries read the same figures the embedded store holds."""
    w = go_duration(window_s)
    rules = [{"record": RECORD_PREFIX + name, "expr": figure_promql(name, w)} for name in FIGURES]
    return {"name": "tollgate-figures", "rules": rules}


def rules_yaml(rules: list[Rule], window_s: float = 60.0) -> dict:
    out = []
    for r in rules:
        annotations = {"summary": go_template(r.summary, r), "description": go_template(r.description, r)}
        if r.runbook_url:
            annotations["runbook_url"] = r.runbook_url
        out.append(
            {
                "alert": r.name,
                "expr": promql(r),
                "for": go_duration(r.for_s),
                "labels": {**r.labels, "severity": r.severity},
                "annotations": {k: v for k, v in annotations.items() if v},
            }
        )
    return {"groups": [{"name": "tollgate", "rules": out}, recording_rules(window_s)]}


def prometheus_yaml(targets: list[str], interval_s: float, alertmanager: str) -> dict:
    jobs: dict[tuple[str, str], list[str]] = {}
    for t in targets:
        u = urlsplit(metrics_url(t))
        jobs.setdefault((u.scheme, u.path or "/metrics"), []).append(u.netloc)
    scrape_configs = [
        {
            "job_name": JOB if i == 0 else f"{JOB}-{i}",
            "scheme": scheme,
            "metrics_path": path,
            "static_configs": [{"targets": hosts}],
        }
        for i, ((scheme, path), hosts) in enumerate(sorted(jobs.items()))
    ]
    every = go_duration(interval_s)
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
        "rule_files": ["rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": scrape_configs,
    }


SLACK_TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}"
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "Since {{ .StartsAt }}{{ if .Annotations.runbook_url }} | <{{ .Annotations.runbook_url }}|Runbook>{{ end }}\n"
    "{{ end }}"
)


def alertmanager_yaml(slack_url_file: str, repeat_interval_s: float, dashboard_url: str | None) -> dict:
    slack = {
        "api_url_file": slack_url_file,
        "send_resolved": True,
        "title": SLACK_TITLE,
        "text": SLACK_TEXT,
        "color": '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}',
    }
    if dashboard_url:
        slack["title_link"] = dashboard_url
    return {
        "route": {
            "receiver": "slack",
            "group_by": ["alertname"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": go_duration(repeat_interval_s),
        },
        "receivers": [{"name": "slack", "slack_configs": [slack]}],
    }


def write_all(
    out: Path,
    rules: list[Rule],
    targets: list[str],
    interval_s: float,
    alertmanager: str = "127.0.0.1:9093",
    slack_url_file: str = "/etc/alertmanager/slack_webhook_url",
    repeat_interval_s: float = 4 * 3600,
    dashboard_url: str | None = None,
    window_s: float = 60.0,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "prometheus.yml": prometheus_yaml(targets, interval_s, alertmanager),
        "rules.yml": rules_yaml(rules, window_s),
        "alertmanager.yml": alertmanager_yaml(slack_url_file, repeat_interval_s, dashboard_url),
    }
    paths = []
    for name, doc in files.items():
        path = out / name
        header = "# generated by `tollgate monitor export-prometheus`; edit the Tollgate rules file instead\n"
        write_text_atomic(path, header + yaml.safe_dump(doc, sort_keys=False, width=1000))
        paths.append(path)
    return paths

"""Generic JSON webhook in Alertmanager's webhook format (version 4), so receivers written for
Alertmanager (PagerDuty bridges, chat bots, custom handlers) work unchanged."""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitors.alert import Alert

ZERO_TIME = "0001-01-01T00:00:00Z"


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def render(alerts: list[Alert], dashboard_url: str | None = None, group_key: str = "") -> dict[str, Any]:
    items = []
    for a in alerts:
        annotations = {"summary": a.summary, "description": a.description}
        if a.runbook_url:
            annotations["runbook_url"] = a.runbook_url
        items.append(
            {
                "status": a.state,
                "labels": {"alertname": a.rule, "severity": a.severity, **a.labels},
                "annotations": {k: v for k, v in annotations.items() if v},
                "startsAt": _rfc3339(a.active_since),
                "endsAt": _rfc3339(a.ts) if a.state == "resolved" else ZERO_TIME,
                "generatorURL": dashboard_url or "",
                "fingerprint": a.fingerprint,
            }
        )
    labels = [i["labels"] for i in items]
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(a.state == "firing" for a in alerts) else "resolved",
        "receiver": "tollgate",
        "groupLabels": {"alertname": alerts[0].rule},
        "commonLabels": _common(labels),
        "commonAnnotations": _common([i["annotations"] for i in items]),
        "externalURL": dashboard_url or "",
        "alerts": items,
    }

"""Slack incoming-webhook messages: Block Kit with one colored attachment per alert.

Slack accepts about one message per second per webhook (MIN_INTERVAL_S), answers 429 with a
Retry-After header when pushed harder, and "200 ok" on success.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitors.alert import Alert

MIN_INTERVAL_S = 1.0
COLORS = {"critical": "#E01E5A", "warning": "#ECB22E", "info": "#36C5F0", "resolved": "#2EB67D"}


def how_far(alert: Alert) -> str:
    """'2.4 (threshold 1.5, 60% over)' style text for the value against its threshold."""
    if alert.value is None or alert.threshold is None:
        return "n/a"
    value, limit = alert.value, alert.threshold
    text = f"{value:.4g} (threshold {alert.comparison} {limit:.4g}"
    if limit != 0 and alert.comparison in (">", ">=", "<", "<="):
        pct = abs(value - limit) / abs(limit) * 100
        side = "over" if value >= limit else "under"
        text += f", {pct:.0f}% {side}"
    return text + ")"


def _since(ts: float) -> str:
    iso = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time_secs}}|{iso}>"


def _attachment(alert: Alert, dashboard_url: str | None) -> dict[str, Any]:
    resolved = alert.state == "resolved"
    color = COLORS["resolved"] if resolved else COLORS.get(alert.severity, COLORS["warning"])
    target = alert.labels.get("target", alert.labels.get("instance", "-"))
    fields = [
        {"type": "mrkdwn", "text": f"*Target*\n{target}"},
        {"type": "mrkdwn", "text": f"*Value*\n{how_far(alert)}"},
        {
            "type": "mrkdwn",
            "text": f"*{'Was active since' if resolved else 'Since'}*\n{_since(alert.active_since)}",
        },
        {"type": "mrkdwn", "text": f"*Severity*\n{alert.severity}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{alert.summary or alert.rule}*"}},
        {"type": "section", "fields": fields},
    ]
    if alert.description:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": alert.description}})
    links = []
    if alert.runbook_url:
        links.append(f"<{alert.runbook_url}|Runbook>")
    if dashboard_url:
        links.append(f"<{dashboard_url}|Dashboard>")
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(links)}]})
    return {"color": color, "fallback": f"{alert.state}: {alert.summary or alert.rule}", "blocks": blocks}


def render(alerts: list[Alert], dashboard_url: str | None = None) -> dict[str, Any]:
    """One Slack message for a group of alerts that changed state together."""
    status = "RESOLVED" if all(a.state == "resolved" for a in alerts) else "FIRING"
    if alerts[0].repeat:
        status += ", still"
    title = f"[{status}] {alerts[0].rule}"
    if len(alerts) > 1:
        title += f" ({len(alerts)} alerts)"
    return {
        "text": f"{title}: {alerts[0].summary or alerts[0].rule}",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}],
        "attachments": [_attachment(a, dashboard_url) for a in alerts],
    }


def plain_text(payload: dict[str, Any]) -> str:
    """Roughly what a Slack client shows for a message (used by the receiver and logs)."""
    lines = []
    for block in payload.get("blocks", []):
        if block.get("type") == "header":
            lines.append(block["text"]["text"])
    for att in payload.get("attachments", []):
        lines += [
            f"  {att[k]}" for k in ("title", "text") if att.get(k)
        ]  # classic attachments (Alertmanager)
        for block in att.get("blocks", []):
            if "text" in block:
                lines.append("  " + block["text"]["text"])
            for f in block.get("fields", []):
                lines.append("  " + f["text"].replace("\n", ": "))
            for el in block.get("elements", []):
                lines.append("  " + el["text"])
    return "\n".join(lines) or payload.get("text", "")

"""Keep secrets (webhook URLs, tokens, API keys) off the screen: they live in configs and payloads."""

from __future__ import annotations

import re
from typing import Any

# a config key that names a secret: api_key, token, access_token, slack_webhook, ... (not max_tokens)
_SECRET_KEY = re.compile(
    r"(^|[_-])(api_?key|key|token|secret|password|passwd|authorization|auth|webhook(_url)?)$", re.I
)
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)(?:[^/\s@]+@)?([^/\s?#'\"]+)[^\s'\"]*", re.IGNORECASE)
_SLACK = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+")
_KEYED = re.compile(
    r"(?i)\b(bearer|token|api[_-]?key|apikey|authorization|password|secret|signature)(\"?\s*[:=]\s*\"?|\s+)([^\s\"',;)]+)"
)


def redact(text: object) -> str:
    """The text with URL paths and queries, Slack tokens and key=value secrets replaced by '***'."""
    if text is None:
        return ""
    out = _URL.sub(
        lambda m: f"{m.group(1)}{m.group(2)}/***" if m.group(0) != m.group(1) + m.group(2) else m.group(0),
        str(text),
    )
    out = _SLACK.sub("xox*-***", out)
    return _KEYED.sub(lambda m: f"{m.group(1)}{m.group(2)}***", out)


def redact_tree(node: Any, key: str = "") -> Any:
    """A decoded JSON config with secret-named values replaced and every string redacted."""
    if isinstance(node, dict):
        return {k: redact_tree(v, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [redact_tree(v, key) for v in node]
    if _SECRET_KEY.search(key) and node not in (None, "", False):
        return "***"
    return redact(node) if isinstance(node, str) else node

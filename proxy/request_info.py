"""What the capture log needs from a generation request's JSON body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollgate.contracts.sketch import text_of_messages

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@dataclass(frozen=True)
class RequestInfo:
    endpoint: str
    model: str
    stream: bool
    usage_requested: bool  # the client asked for usage in the stream (stream_options.include_usage)
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    n_messages: int | None
    prompt_text: str
    system_prompt: str | None


def _number(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


def _completion_text(prompt: Any) -> str:
    """A string prompt, or a batch of them joined; token-id prompts carry no text a proxy can read."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return "\n".join(prompt)
    return ""


def request_info(endpoint: str, body: Any) -> RequestInfo | None:
    """The request's capture fields, or None when the body is not a JSON object (upstream will refuse it)."""
    if not isinstance(body, dict):
        return None
    stream = body.get("stream") is True
    options = body.get("stream_options")
    usage_requested = stream and isinstance(options, dict) and options.get("include_usage") is True
    max_tokens = _number(body, "max_completion_tokens", int) if endpoint == CHAT else None
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int)
    if endpoint == CHAT:
        messages = body.get("messages")
        messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        text, system = text_of_messages(messages)
        n_messages: int | None = len(messages)
    else:
        text, system, n_messages = _completion_text(body.get("prompt")), None, None
    model = body.get("model")
    return RequestInfo(
        endpoint=endpoint,
        model=model if isinstance(model, str) else "",
        stream=stream,
        usage_requested=usage_requested,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        top_k=_number(body, "top_k", int),
        n_messages=n_messages,
        prompt_text=text,
        system_prompt=system,
    )

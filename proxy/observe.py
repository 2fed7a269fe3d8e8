"""What the proxy saw of one response: token arrivals, usage, finish reason, and when.

A chunk is a token arrival when a choice carries generated output: a completion's `text`, a chat
delta's `content`/`reasoning`/`reasoning_content` or `tool_calls`, even when the text is empty
(vLLM streams one chunk per token, special and partial-UTF-8 tokens included). Chat's opening
role announcement and a closing `delta: {}` are not token arrivals. This is the definition the
docs/reference/metrics.md gives for TTFT.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

_OUTPUT_FIELDS = ("content", "reasoning", "reasoning_content")


@dataclass
class Times:
    """Unix seconds, in the shape `capture_record` reads (the proxy never sees the queue)."""

    arrival: float
    first_token: float | None = None
    finished: float | None = None
    first_scheduled: None = None


def _is_token(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return isinstance(choice.get("text"), str)
    if delta.get("tool_calls"):
        return True
    texts = [v for k in _OUTPUT_FIELDS if isinstance(v := delta.get(k), str)]
    if "role" in delta:
        return any(texts)
    return bool(texts)


class Observation:
    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self.times = Times(arrival=time.time())
        self.first_token_s: float | None = None  # seconds since arrival
        self.e2e_s: float | None = None
        self.token_chunks = 0
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.response_id: str | None = None
        self.model: str | None = None
        self.error: str | None = None

    def _since(self) -> float:
        return time.perf_counter() - self._t0

    def _read(self, obj: Any) -> list[dict[str, Any]]:
        if not isinstance(obj, dict):
            return []
        if isinstance(obj.get("error"), dict):
            self.error = str(obj["error"].get("message") or obj["error"])
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        if self.response_id is None and isinstance(obj.get("id"), str):
            self.response_id = obj["id"]
        if self.model is None and isinstance(obj.get("model"), str):
            self.model = obj["model"]
        choices = obj.get("choices")
        choices = [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
        for choice in choices:
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
        return choices

    def on_event(self, data: str | None) -> bool:
        """Record one SSE event's data; True when it is a usage-only chunk (no choices)."""
        if data is None or data.strip() == "[DONE]":
            return False
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        choices = self._read(obj)
        if any(_is_token(c) for c in choices):
            self.token_chunks += 1
            if self.first_token_s is None:
                self.first_token_s = self._since()
        return not choices and isinstance(obj, dict) and isinstance(obj.get("usage"), dict)

    def on_body(self, body: bytes) -> None:
        """Record a whole (non-streamed) JSON response."""
        try:
            self._read(orjson.loads(body))
        except orjson.JSONDecodeError:
            self.error = "the upstream's response is not JSON"

    def finish(self) -> None:
        self.e2e_s = self._since()
        self.times.finished = self.times.arrival + self.e2e_s
        if self.first_token_s is not None:
            self.times.first_token = self.times.arrival + self.first_token_s

"""Incremental Server-Sent Events parser for OpenAI-style streams, robust to broken streams.

Bytes arrive in arbitrary pieces (a line split across reads, several events in one read, \\r\\n or
\\n endings). `SSEParser.feed` returns the complete events; `finish` says what was left dangling
when the stream ended. `parse_chunk` turns one event's data into a `Chunk` or raises
`StreamError` with a short reason, which the user records as the request's failure reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class StreamError(Exception):
    """The stream broke the protocol; str(exc) is the failure reason recorded for the request."""


@dataclass
class Chunk:
    done: bool = False  # the `[DONE]` sentinel
    text: str = ""  # content carried by this chunk (delta.content or text)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None


class SSEParser:
    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event_type = ""
        self.events = 0

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Feed raw bytes; return complete events as (event type, data)."""
        self._buffer += data
        out: list[tuple[str, str]] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line, self._buffer = self._buffer[:end], self._buffer[end + skip :]
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                out.append(event)
        return out

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:
            if not self._data:
                self._event_type = ""
                return None
            event = (self._event_type or "message", "\n".join(self._data))
            self._data, self._event_type = [], ""
            self.events += 1
            return event
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        return None

    def finish(self) -> list[tuple[str, str]]:
        """End of stream: dispatch an event missing only its blank line; raise on a torn line."""
        if self._buffer.strip():
            raise StreamError("stream ended inside an SSE line")
        if self._data:
            event = (self._event_type or "message", "\n".join(self._data))
            self._data = []
            return [event]
        return []


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    n = buffer.find(b"\n")
    r = buffer.find(b"\r")
    if r == -1 and n == -1:
        return None
    if r != -1 and (n == -1 or r < n):
        if r + 1 == len(buffer):
            return None  # a lone \r at the end may be the first half of \r\n
        return r, 2 if buffer[r + 1 : r + 2] == b"\n" else 1
    return n, 1


def parse_chunk(data: str) -> Chunk:
    """Decode one `data:` payload of a chat or completions stream."""
    data = data.strip()
    if data == "[DONE]":
        return Chunk(done=True)
    try:
        obj = json.loads(data)
    except json.JSONDecodeError:
        lines = [part for part in data.split("\n") if part.strip()]
        if len(lines) > 1:  # several data lines without blank lines between them: take the last
            return parse_chunk(lines[-1])
        raise StreamError("malformed SSE: data is not JSON") from None
    if not isinstance(obj, dict):
        raise StreamError("malformed SSE: data is not a JSON object")
    if "error" in obj:
        error = obj["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise StreamError(f"server error in stream: {str(message)[:80]}")
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else None
    text, finish = "", None
    for choice in obj.get("choices") or []:
        if not isinstance(choice, dict):
            raise StreamError("malformed SSE: choice is not an object")
        delta = choice.get("delta")
        piece = (delta.get("content") if isinstance(delta, dict) else None) or choice.get("text") or ""
        if isinstance(delta, dict) and not piece:
            piece = delta.get("reasoning_content") or ""
        text += piece if isinstance(piece, str) else ""
        finish = choice.get("finish_reason") or finish
    return Chunk(text=text, usage=usage, finish_reason=finish)

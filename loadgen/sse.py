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

import orjson


class StreamError(Exception):
    """The stream broke the protocol; str(exc) is the failure reason recorded for the request."""


@dataclass(slots=True)
class Chunk:
    done: bool = False  # the `[DONE]` sentinel
    text: str = ""  # output carried by this event (content, reasoning or completions text)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    tokens: int = 0  # token arrivals in this event: JSON objects that carried output, empty text included


class SSEParser:
    """Lines and events are kept as bytes; `feed` decodes each event's data, `feed_raw` hands it over
    undecoded (orjson reads the bytes directly: the load test's per-chunk path skips a UTF-8 decode)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event_type = ""
        self.events = 0

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Feed raw bytes; return complete events as (event type, data)."""
        return [(kind, _text(payload)) for kind, payload in self.feed_raw(data)]

    def feed_raw(self, data: bytes) -> list[tuple[str, bytes]]:
        """Feed raw bytes; return complete events as (event type, data as UTF-8 bytes).

        The per-chunk hot path of a load test: \n-only streams (every OpenAI-compatible server) are
        split in one bytes.split, and `data: ` and blank lines skip the general field parsing."""
        if (
            data[:6] == b"data: "
            and data[-2:] == b"\n\n"
            and data.count(b"\n") == 2
            and not (self._buffer or self._data or self._event_type)
            and b"\r" not in data
        ):  # one whole single-line event per read: how servers that flush each chunk arrive
            self.events += 1
            return [("message", data[6:-2])]
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            self._buffer = buffer
            return self._feed_any_endings()
        *lines, self._buffer = buffer.split(b"\n")
        out: list[tuple[str, bytes]] = []
        for raw in lines:
            if raw[:6] == b"data: ":
                self._data.append(raw[6:])
                continue
            event = self._dispatch() if not raw else self._line(raw)
            if event is not None:
                out.append(event)
        return out

    def _feed_any_endings(self) -> list[tuple[str, bytes]]:
        """\r\n, \r or \n line endings, a lone \r at the end held back (it may be half of \r\n)."""
        out: list[tuple[str, bytes]] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line, self._buffer = self._buffer[:end], self._buffer[end + skip :]
            event = self._line(line)
            if event is not None:
                out.append(event)
        return out

    def _dispatch(self) -> tuple[str, bytes] | None:
        """A blank line: the event gathered so far, if it has data."""
        if not self._data:
            self._event_type = ""
            return None
        event = (self._event_type or "message", b"\n".join(self._data))
        self._data, self._event_type = [], ""
        self.events += 1
        return event

    def _line(self, line: bytes) -> tuple[str, bytes] | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event_type = _text(value)
        return None

    def finish(self) -> list[tuple[str, str]]:
        """End of stream: dispatch an event missing only its blank line; raise on a torn line."""
        return [(kind, _text(payload)) for kind, payload in self.finish_raw()]

    def finish_raw(self) -> list[tuple[str, bytes]]:
        """`finish`, the event's data left as bytes."""
        if self._buffer.strip():
            raise StreamError("stream ended inside an SSE line")
        if self._data:
            event = (self._event_type or "message", b"\n".join(self._data))
            self._data = []
            return [event]
        return []


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


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


def parse_chunk(data: str | bytes) -> Chunk:
    """Decode one event's data (its `data:` lines joined with newlines, as the SSE spec says).

    Servers that write several JSON objects as consecutive `data:` lines of one event are read
    object by object and merged, so no object's output or tokens are dropped."""
    data = data.strip()
    if data == b"[DONE]" or data == "[DONE]":
        return Chunk(done=True)
    try:
        return _decode(orjson.loads(data))  # compiled: the JSON decode of every chunk is the hot path
    except orjson.JSONDecodeError:
        objects = _json_values(_text(data)) if isinstance(data, bytes) else _json_sequence(data)
    if len(objects) == 1:
        return _decode(objects[0])
    merged = Chunk()
    for obj in objects:
        if obj == "[DONE]":
            merged.done = True
            continue
        part = _decode(obj)
        merged.text += part.text
        merged.tokens += part.tokens
        merged.usage = part.usage or merged.usage
        merged.finish_reason = part.finish_reason or merged.finish_reason
    return merged


def _json_values(text: str) -> list[Any]:
    """The values of data that was not valid JSON as bytes: invalid UTF-8 reads as U+FFFD (one value),
    else a sequence of values."""
    try:
        return [orjson.loads(text)]
    except orjson.JSONDecodeError:
        return _json_sequence(text)


def _json_sequence(data: str) -> list[Any]:
    """Several JSON values in one event's data (one per `data:` line), or StreamError."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    for line in data.split("\n"):
        line = line.strip()
        if not line:
            continue
        if line == "[DONE]":
            out.append(line)
            continue
        try:
            value, end = decoder.raw_decode(line)
        except json.JSONDecodeError:
            raise StreamError("malformed SSE: data is not JSON") from None
        if line[end:].strip():
            raise StreamError("malformed SSE: data is not JSON")
        out.append(value)
    if len(out) < 2:
        raise StreamError("malformed SSE: data is not JSON")
    return out


def _decode(obj: Any) -> Chunk:
    if not isinstance(obj, dict):
        raise StreamError("malformed SSE: data is not a JSON object")
    if "error" in obj:
        error = obj["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise StreamError(f"server error in stream: {str(message)[:80]}")
    usage = obj.get("usage")
    if usage is not None and not isinstance(usage, dict):
        usage = None
    choices = obj.get("choices") or ()
    if len(choices) == 1 and isinstance(choices[0], dict):  # the common chunk: one choice
        piece, is_token = _choice_output(choices[0])
        return Chunk(
            text=piece,
            usage=usage,
            finish_reason=choices[0].get("finish_reason") or None,
            tokens=int(is_token),
        )
    text, finish, tokens = "", None, 0
    for choice in choices:
        if not isinstance(choice, dict):
            raise StreamError("malformed SSE: choice is not an object")
        piece, is_token = _choice_output(choice)
        text += piece
        tokens += is_token
        finish = choice.get("finish_reason") or finish
    return Chunk(text=text, usage=usage, finish_reason=finish, tokens=tokens)


OUTPUT_FIELDS = ("content", "reasoning", "reasoning_content")  # delta fields that carry generated text


def _choice_output(choice: dict[str, Any]) -> tuple[str, bool]:
    """(text, is a token arrival) of one streamed choice.

    A token arrival is a choice that carries output, even when its text is empty: vLLM streams one
    chunk per token, and a special or partial-UTF-8 token decodes to "". Output is completions'
    `text`, or a chat delta's `content`, vLLM's `reasoning`/`reasoning_content`, or `tool_calls`.
    Not output: chat's opening role announcement (`{"role": "assistant", "content": ""}`, which
    some servers send before generation starts), and a closing `delta: {}` with the finish reason."""
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        text = choice.get("text")
        return (text, True) if isinstance(text, str) else ("", False)
    content = delta.get("content")
    if len(delta) == 1 and isinstance(content, str):  # the common token chunk: {"content": "..."}
        return content, True
    text = "".join(v for k in OUTPUT_FIELDS if isinstance(v := delta.get(k), str))
    has_output = any(isinstance(delta.get(k), str) for k in OUTPUT_FIELDS)
    tools = delta.get("tool_calls")
    if isinstance(tools, list) and tools:
        return text, True
    if "role" in delta and not text:
        return "", False
    return text, has_output

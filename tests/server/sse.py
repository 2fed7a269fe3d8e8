"""Reading an SSE response event by event, strictly: every event must be `data: ...` + blank line."""

from __future__ import annotations

import json

import httpx


def read_events(response: httpx.Response) -> list[dict | str]:
    """Decoded `data:` payloads in order; the final "[DONE]" is kept as the string."""
    events: list[dict | str] = []
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            event, buffer = buffer.split("\n\n", 1)
            assert event.startswith("data: "), f"not an SSE data event: {event!r}"
            payload = event[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    assert buffer == "", f"stream ended inside an event: {buffer!r}"
    return events

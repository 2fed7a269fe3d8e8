"""Split an SSE byte stream into whole events, so each is relayed the moment it is complete."""

from __future__ import annotations

_SEPARATORS = (b"\r\n\r\n", b"\n\n")


class EventSplitter:
    """Feed raw bytes; get back complete events (with their blank-line terminator), in order."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        events: list[bytes] = []
        while True:
            ends = [(i + len(sep)) for sep in _SEPARATORS if (i := self._buffer.find(sep)) >= 0]
            if not ends:
                return events
            end = min(ends)
            events.append(self._buffer[:end])
            self._buffer = self._buffer[end:]

    def rest(self) -> bytes:
        """What is left when the stream ends (an unterminated last event, or nothing)."""
        rest, self._buffer = self._buffer, b""
        return rest


def event_data(event: bytes) -> str | None:
    """The joined `data:` lines of one event, or None when it has none (a comment or keep-alive)."""
    lines = [
        line[5:].removeprefix(" ")
        for line in event.decode("utf-8", "replace").splitlines()
        if line.startswith("data:")
    ]
    return "\n".join(lines) if lines else None

"""Turn a stream's SSE events into a RequestRecord's timeline (no Locust import, so tests use it directly)."""

from __future__ import annotations

from loadgen.sse import parse_chunk
from loadgen.timeline import RequestRecord


class StreamRecorder:
    """Stamps each token chunk of one streamed response into `record` (see loadgen.sse for what a token chunk is)."""

    def __init__(self, record: RequestRecord) -> None:
        self.record = record
        self.done = False  # [DONE] seen: later events are ignored
        self.finished = False  # a finish reason or [DONE] seen
        self._last_tokens = 0

    def on_event(self, event: str | bytes, arrived: float) -> None:
        if self.done:
            return
        record = self.record
        chunk = parse_chunk(event)
        record.end_perf = arrived
        if chunk.done:
            self.done = self.finished = True
            return
        if chunk.usage:
            record.prompt_tokens = chunk.usage.get("prompt_tokens", record.prompt_tokens)
            record.usage_output_tokens = chunk.usage.get("completion_tokens", record.usage_output_tokens)
        if record.keep_text:
            record.text += chunk.text
        if chunk.tokens:  # a token arrival, even with empty text
            record.chunk_perf.append(arrived)
            tokens = chunk.tokens if chunk.tokens > 1 else None  # one object: usage may say it carried more
            if chunk.usage and isinstance(chunk.usage.get("completion_tokens"), int):
                tokens = chunk.usage["completion_tokens"] - self._last_tokens
                self._last_tokens = chunk.usage["completion_tokens"]
            record.chunk_tokens.append(tokens)
        self.finished = self.finished or chunk.finish_reason is not None

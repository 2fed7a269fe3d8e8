"""What the engine hands out: per-request outputs with their timestamps, and engine-wide stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestTimes:
    """Unix seconds (time.time()); None until the event happened."""

    arrival: float
    first_scheduled: float | None
    first_token: float | None
    last_token: float | None
    finished: float | None
    num_cached_prompt_tokens: int = 0  # prompt tokens served by the prefix cache
    num_preemptions: int = 0


@dataclass
class RequestOutput:
    request_id: str
    new_token_ids: list[int]
    text: str
    finished: bool
    finish_reason: str | None
    num_prompt_tokens: int
    num_output_tokens: int
    times: RequestTimes
    token_times: list[float] = field(default_factory=list)  # one stamp per id in new_token_ids
    logprobs: list[Any] | None = None  # sampling.TokenLogprobs per id in new_token_ids, when asked


@dataclass
class EngineStats:
    num_running: int
    num_waiting: int
    num_kv_blocks: int
    num_free_blocks: int
    num_cached_blocks: int
    kv_cache_usage: float
    prefix_cache_queries: int
    prefix_cache_hits: int
    num_preemptions: int
    step_count: int

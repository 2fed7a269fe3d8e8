"""One request as the server sees it (`Job`) and the non-streamed response bodies."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Job:
    """A validated request, ready for the engine."""

    endpoint: str
    chat: bool
    model: str
    prompt_ids: list[int]
    params: Any  # reference_server.sampling.SamplingParams
    stream: bool
    include_usage: bool
    return_token_ids: bool
    prompt_text: str
    system_prompt: str | None
    n_messages: int | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))
    arrival: float = field(default_factory=time.time)

    @property
    def response_id(self) -> str:
        return ("chatcmpl-" if self.chat else "cmpl-") + self.request_id


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def full_response(
    job: Job,
    text: str,
    token_ids: list[int],
    finish_reason: str | None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if job.chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
    else:
        choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
    body: dict[str, Any] = {
        "id": job.response_id,
        "object": "chat.completion" if job.chat else "text_completion",
        "created": job.created,
        "model": job.model,
        "choices": [choice],
        "usage": usage(len(job.prompt_ids), len(token_ids)),
    }
    if job.return_token_ids:
        choice["token_ids"] = token_ids
        if job.chat:
            body["prompt_token_ids"] = job.prompt_ids
        else:
            choice["prompt_token_ids"] = job.prompt_ids
    return body

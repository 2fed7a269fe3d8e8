"""Server-sent events in OpenAI's streaming format.

Each event is `data: <json>\\n\\n`; the stream ends with `data: [DONE]\\n\\n`. Chat streams send
`chat.completion.chunk` objects whose first chunk carries `delta.role`; completion streams send
`text_completion` objects. The chunk that finishes a choice carries its `finish_reason`. With
`stream_options.include_usage`, every chunk has `"usage": null` and one last chunk with no
choices carries the usage, as OpenAI does. With `return_token_ids`, chunks carry the new
`token_ids` and the first one the `prompt_token_ids`, as vLLM does.
"""

from __future__ import annotations

import json
from typing import Any

from reference_server.server.errors import error_body
from reference_server.server.responses import Job, usage

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _chunk(job: Job, choices: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.response_id,
        "object": "chat.completion.chunk" if job.chat else "text_completion",
        "created": job.created,
        "model": job.model,
        "choices": choices,
    }
    if job.include_usage:
        body["usage"] = None
    return body


def first_chunk(job: Job) -> bytes | None:
    """The opening chunk: the assistant role for chat (with the prompt ids if asked); None otherwise."""
    if not job.chat:
        return None
    body = _chunk(
        job,
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
    )
    if job.return_token_ids:
        body["prompt_token_ids"] = job.prompt_ids
    return sse(body)


def delta_chunk(
    job: Job,
    text: str,
    token_ids: list[int],
    finish_reason: str | None,
    first: bool,
    logprobs: dict[str, Any] | None = None,
) -> bytes:
    choice: dict[str, Any] = {"index": 0}
    if job.chat:
        choice["delta"] = {"content": text} if text or finish_reason is None else {}
    else:
        choice["text"] = text
    choice["logprobs"] = logprobs
    choice["finish_reason"] = finish_reason
    if job.return_token_ids:
        choice["token_ids"] = token_ids
        if first and not job.chat:
            choice["prompt_token_ids"] = job.prompt_ids
    return sse(_chunk(job, [choice]))


def usage_chunk(job: Job, completion_tokens: int) -> bytes:
    body = _chunk(job, [])
    body["usage"] = usage(len(job.prompt_ids), completion_tokens)
    return sse(body)


def error_event(message: str, status: int = 500, code: str | None = None) -> bytes:
    """An error met after the 200 header went out: sent in the stream, in the usual error shape."""
    return sse(error_body(status, message, None, code))

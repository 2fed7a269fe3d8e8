"""`logprobs` of /v1/completions in vLLM's (and OpenAI's legacy) shape.

    "logprobs": {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}, ...],
                 "text_offset": [...]}

`tokens` are each sampled token's own text; `text_offset` is where that text starts in the
completion (streamed chunks continue the count); `top_logprobs[i]` holds the `logprobs: N` most
likely tokens at step i plus the sampled one when it is not among them, as vLLM does (tokens
whose texts coincide, e.g. partial UTF-8 bytes shown as U+FFFD, share one key). Values are
natural-log probabilities of the model's raw distribution (before temperature, top-k, top-p).
"""

from __future__ import annotations

from typing import Any

from reference_server.sampling import TokenLogprobs


def completion_logprobs(
    tokenizer: Any, token_ids: list[int], entries: list[TokenLogprobs], offset: int = 0
) -> tuple[dict[str, Any], int]:
    """The logprobs block of these tokens and the text offset after them."""
    block: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for token, entry in zip(token_ids, entries, strict=True):
        text = tokenizer.decode([token])
        top: dict[str, float] = {}
        for t, lp in entry.top:  # tokens with the same text (partial UTF-8 bytes): the likelier one
            top.setdefault(tokenizer.decode([t]), lp)
        top[text] = entry.logprob
        block["tokens"].append(text)
        block["token_logprobs"].append(entry.logprob)
        block["top_logprobs"].append(top)
        block["text_offset"].append(offset)
        offset += len(text)
    return block, offset

"""POST /tokenize and /detokenize with vLLM's request and response shapes.

Load generators (Tollgate's `tollgate load`, vLLM's `bench serve`) ask the target itself how many
tokens a prompt is, so workloads are sized in the served model's tokens. A chat request is
tokenized exactly as /v1/chat/completions would tokenize it (same template, same BOS rule), by
going through the same `prepare_chat`.
"""

from __future__ import annotations

from typing import Any

from reference_server.server.errors import APIError
from reference_server.server.prepare import check_model, prepare_chat
from reference_server.server.protocol import (
    ChatCompletionRequest,
    DetokenizeRequest,
    TokenizeChatRequest,
    TokenizeCompletionRequest,
)


def tokenize(req: TokenizeCompletionRequest | TokenizeChatRequest, engine: Any) -> dict[str, Any]:
    tokenizer = engine.tokenizer
    if isinstance(req, TokenizeChatRequest):
        if not req.add_generation_prompt or req.continue_final_message:
            raise APIError(
                400,
                "the reference server's chat template always ends with the assistant's generation prompt; "
                "omit add_generation_prompt=false / continue_final_message",
                param="add_generation_prompt",
                code="invalid_value",
            )
        chat = ChatCompletionRequest(model=req.model, messages=req.messages, max_tokens=1)
        ids = prepare_chat(chat, engine).prompt_ids
    else:
        check_model(req.model, engine)
        ids = tokenizer.encode(req.prompt, add_special_tokens=req.add_special_tokens)
    body: dict[str, Any] = {"count": len(ids), "max_model_len": engine.max_model_len, "tokens": ids}
    if req.return_token_strs:
        body["token_strs"] = [tokenizer.token_text(t) for t in ids]
    return body


def detokenize(req: DetokenizeRequest, engine: Any) -> dict[str, Any]:
    check_model(req.model, engine)
    tokenizer = engine.tokenizer
    bad = [t for t in req.tokens if t >= tokenizer.vocab_size]
    if bad:
        raise APIError(
            400,
            f"token id {bad[0]} is out of the vocabulary (valid ids are 0..{tokenizer.vocab_size - 1})",
            param="tokens",
            code="invalid_value",
        )
    return {"prompt": tokenizer.decode(list(req.tokens))}

"""Turn a validated OpenAI request into a `Job` for the engine, or a precise 400.

Checks the model name, renders chat messages through the tokenizer's chat template, tokenizes
string prompts (token-id prompts are checked against the vocabulary), resolves max_tokens
against the context length and builds the engine's SamplingParams.
"""

from __future__ import annotations

from typing import Any

from reference_server.sampling import SamplingParams
from reference_server.server.errors import APIError
from reference_server.server.protocol import ChatCompletionRequest, CompletionRequest, message_text
from reference_server.server.responses import Job
from reference_server.tokenizer import NoChatTemplate
from tollgate.contracts.sketch import text_of_messages


def _bad(message: str, param: str | None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def check_model(requested: str | None, engine: Any) -> str:
    name = engine.model_name
    if requested is not None and requested != name:
        raise _bad(
            f"The model '{requested}' does not exist on this server; it serves '{name}' (see GET /v1/models).",
            "model",
            "model_not_found",
        )
    return name


def _unsupported(req: CompletionRequest | ChatCompletionRequest) -> None:
    if isinstance(req, CompletionRequest):
        if req.echo:
            raise _bad("echo is not supported by the reference server; send echo=false", "echo")
        if req.best_of not in (None, 1):
            raise _bad("best_of other than 1 is not supported; omit best_of", "best_of")
        if req.suffix:
            raise _bad("suffix is not supported by the reference server; omit suffix", "suffix")
    else:
        if req.logprobs:
            raise _bad("logprobs are not supported by the reference server; omit logprobs", "logprobs")
        if req.tools:
            raise _bad("tools are not supported by the reference server; omit tools", "tools")


def _completion_prompt(req: CompletionRequest, tokenizer: Any) -> tuple[list[int], str]:
    prompt = req.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        if len(prompt) != 1:
            raise _bad(
                f"batched prompts are not supported ({len(prompt)} given); send one prompt per request",
                "prompt",
            )
        prompt = prompt[0]
    if isinstance(prompt, str):
        return tokenizer.encode(prompt, add_special_tokens=True), prompt
    ids = list(prompt)
    bad = [t for t in ids if t < 0 or t >= tokenizer.vocab_size]
    if bad:
        raise _bad(
            f"prompt token id {bad[0]} is out of the vocabulary (valid ids are 0..{tokenizer.vocab_size - 1})",
            "prompt",
        )
    return ids, tokenizer.decode(ids)


def _resolve_max_tokens(requested: int | None, n_prompt: int, max_model_len: int, what: str) -> int:
    if n_prompt == 0:
        raise _bad("the prompt is empty: send at least one token", what)
    if requested is None:
        if n_prompt >= max_model_len:
            raise _bad(
                f"This model's maximum context length is {max_model_len} tokens, but the {what} has "
                f"{n_prompt} tokens. Shorten the {what}.",
                what,
            )
        return max_model_len - n_prompt
    if n_prompt + requested > max_model_len:
        raise _bad(
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{n_prompt + requested} tokens ({n_prompt} in the {what}, {requested} for the completion). "
            "Reduce the length of the prompt or max_tokens.",
            "max_tokens",
            "context_length_exceeded",
        )
    return requested


def _sampling(req: CompletionRequest | ChatCompletionRequest, max_tokens: int) -> SamplingParams:
    params = SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        top_k=0 if req.top_k is None else req.top_k,
        seed=req.seed,
        stop=req.stop_list(),
        stop_token_ids=list(req.stop_token_ids or []),
        ignore_eos=req.ignore_eos,
        min_tokens=req.min_tokens,
        logprobs=req.logprobs if isinstance(req, CompletionRequest) else None,
    )
    try:
        params.validate()
    except ValueError as exc:  # the message starts with the field's name
        field = str(exc).split(" ", 1)[0]
        raise _bad(str(exc), field if hasattr(params, field) else None) from exc
    return params


def _job(
    req: CompletionRequest | ChatCompletionRequest,
    endpoint: str,
    model: str,
    ids: list[int],
    max_tokens: int,
    text: str,
    system: str | None,
    n_messages: int | None,
) -> Job:
    return Job(
        endpoint=endpoint,
        chat=isinstance(req, ChatCompletionRequest),
        model=model,
        prompt_ids=ids,
        params=_sampling(req, max_tokens),
        stream=req.stream,
        include_usage=bool(req.stream and req.stream_options and req.stream_options.include_usage),
        return_token_ids=req.return_token_ids,
        prompt_text=text,
        system_prompt=system,
        n_messages=n_messages,
    )


def prepare_completion(req: CompletionRequest, engine: Any) -> Job:
    model = check_model(req.model, engine)
    _unsupported(req)
    ids, text = _completion_prompt(req, engine.tokenizer)
    max_tokens = _resolve_max_tokens(req.max_tokens, len(ids), engine.max_model_len, "prompt")
    return _job(req, "/v1/completions", model, ids, max_tokens, text, None, None)


def prepare_chat(req: ChatCompletionRequest, engine: Any) -> Job:
    model = check_model(req.model, engine)
    _unsupported(req)
    messages = [{"role": m.role, "content": message_text(m)} for m in req.messages]
    try:
        rendered = engine.tokenizer.apply_chat_template(messages)
    except NoChatTemplate as exc:
        raise _bad(str(exc), "messages") from exc
    except Exception as exc:  # a checkpoint's jinja template may reject a conversation shape
        raise _bad(f"the chat template could not render these messages: {exc}", "messages") from exc
    # Templates that write the BOS token themselves must not get a second one from the tokenizer.
    add_special = "bos_token" not in (getattr(engine.tokenizer, "chat_template", None) or "")
    ids = engine.tokenizer.encode(rendered, add_special_tokens=add_special)
    max_tokens = _resolve_max_tokens(req.max_new_tokens(), len(ids), engine.max_model_len, "messages")
    text, system = text_of_messages(messages)
    return _job(req, "/v1/chat/completions", model, ids, max_tokens, text, system, len(messages))

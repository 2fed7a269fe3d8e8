"""Running one admitted Job on the engine: streamed or collected, with its accounting.

`Run` owns a request from admission to its end: it feeds metrics as outputs arrive and, exactly
once when the request ends for any reason (finished, client gone, error, server draining), it
records the finish in the metrics and the capture log and releases the admission slot. A
request that ends before the engine finished it is aborted in the engine, which frees its KV
blocks at once, and is counted with finished_reason "abort".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from reference_server.server import streaming
from reference_server.server.errors import APIError
from reference_server.server.logprobs import completion_logprobs
from reference_server.server.responses import Job, full_response
from reference_server.server.state import ServerContext
from tollgate.contracts.capture_log import capture_record

log = logging.getLogger("tollgate.server")


@dataclass
class _Times:
    """Stand-in for the engine's RequestTimes when a request never produced an output."""

    arrival: float
    first_scheduled: float | None = None
    first_token: float | None = None
    last_token: float | None = None
    finished: float | None = None


@dataclass
class Run:
    ctx: ServerContext
    job: Job
    finish_reason: str | None = None
    num_prompt_tokens: int = 0
    num_output_tokens: int = 0
    times: Any = None
    last_token_time: float | None = None
    _prefilled: bool = field(default=False, repr=False)
    _closed: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.ctx.active.add(self.job.request_id)

    async def outputs(self) -> AsyncIterator[Any]:
        """The engine's outputs for this job, observed into the metrics as they come."""
        metrics = self.ctx.metrics
        async for out in self.ctx.engine.generate(self.job.request_id, self.job.prompt_ids, self.job.params):
            if not self._prefilled and out.times.first_token is not None:  # the prompt was processed
                self._prefilled = True
                metrics.prompt_tokens.inc(out.num_prompt_tokens)
                metrics.ttft.observe(max(0.0, out.times.first_token - out.times.arrival))
            self.times = out.times
            self.num_prompt_tokens = out.num_prompt_tokens
            self.num_output_tokens = out.num_output_tokens
            self.last_token_time = metrics.tokens(
                len(out.new_token_ids), out.token_times, self.last_token_time
            )
            if out.finished:
                self.finish_reason = out.finish_reason or "stop"
            yield out
            if out.finished:
                return

    def close(self) -> None:
        """Account for the end of the request; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        ctx, job = self.ctx, self.job
        ctx.active.discard(job.request_id)
        if self.finish_reason in (None, "error"):  # the engine may still hold it: free its blocks now
            self.finish_reason = self.finish_reason or "abort"
            with contextlib.suppress(Exception):
                ctx.engine.abort(job.request_id)
        times = self.times or _Times(arrival=job.arrival)
        if self.finish_reason == "abort" and times.finished is None:
            times = _Times(
                times.arrival, times.first_scheduled, times.first_token, times.last_token, time.time()
            )
        num_prompt = self.num_prompt_tokens or len(job.prompt_ids)
        if self.finish_reason == "error":  # refused or failed inside the engine: not a served request
            ctx.reject("invalid_request")
        else:
            ctx.metrics.finished(
                self.finish_reason, times, num_prompt, self.num_output_tokens, job.params.max_tokens
            )
        end = times.finished or times.last_token
        ctx.admission.release(None if end is None else end - times.arrival)
        if ctx.capture is not None:
            ctx.capture.submit(self._capture_record(times, num_prompt))

    def _capture_record(self, times: Any, num_prompt: int) -> Callable[[], dict[str, Any]]:
        """The capture log line of the finished request, built on the capture writer's thread."""
        job = self.job
        return functools.partial(
            capture_record,
            request_id=job.request_id,
            endpoint=job.endpoint,
            model=job.model,
            stream=job.stream,
            prompt_text=job.prompt_text,
            system_prompt=job.system_prompt,
            prompt_tokens=num_prompt,
            completion_tokens=self.num_output_tokens,
            max_tokens=job.params.max_tokens,
            temperature=job.params.temperature,
            top_p=job.params.top_p,
            top_k=job.params.top_k,
            n_messages=job.n_messages,
            finish_reason=self.finish_reason,
            times=times,
            include_text=self.ctx.settings.capture_text,
        )


def _engine_error(exc: ValueError) -> APIError:
    return APIError(400, f"the engine refused the request: {exc}", code="invalid_value")


async def _wait_disconnect(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def collect(run: Run, request: Request) -> dict[str, Any]:
    """Non-streamed response; the request is aborted if the client goes away first."""
    texts: list[str] = []
    token_ids: list[int] = []
    entries: list[Any] = []

    async def consume() -> None:
        async with contextlib.aclosing(run.outputs()) as outputs:
            async for out in outputs:
                texts.append(out.text)
                token_ids.extend(out.new_token_ids)
                entries.extend(out.logprobs or [])

    work = asyncio.ensure_future(consume())
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            raise APIError(499, "client closed the connection", code="client_closed")
        try:
            work.result()
        except ValueError as exc:
            run.finish_reason = "error"
            raise _engine_error(exc) from exc
    finally:
        watcher.cancel()
        if not work.done():
            work.cancel()
        run.close()
    logprobs = None
    if run.job.params.logprobs is not None:
        logprobs = completion_logprobs(run.ctx.engine.tokenizer, token_ids, entries)[0]
    return full_response(run.job, "".join(texts), token_ids, run.finish_reason, logprobs)


async def _sse_events(run: Run) -> AsyncIterator[bytes]:
    job = run.job
    opening = streaming.first_chunk(job)
    if opening is not None:
        yield opening
    first = True
    want_logprobs = job.params.logprobs is not None
    pending_ids: list[int] = []  # tokens whose logprobs wait for the next chunk that is sent
    pending: list[Any] = []
    offset = 0
    try:
        async with contextlib.aclosing(run.outputs()) as outputs:
            async for out in outputs:
                finish = (out.finish_reason or "stop") if out.finished else None
                if want_logprobs:
                    pending_ids.extend(out.new_token_ids)
                    pending.extend(out.logprobs or [])
                # Tokens whose text is held back (a partial UTF-8 character or a possible stop
                # string) produce no chunk unless the client asked for token ids.
                if out.text or finish is not None or (job.return_token_ids and out.new_token_ids):
                    logprobs = None
                    if want_logprobs:
                        tokenizer = run.ctx.engine.tokenizer
                        logprobs, offset = completion_logprobs(tokenizer, pending_ids, pending, offset)
                        pending_ids, pending = [], []
                    yield streaming.delta_chunk(
                        job, out.text, list(out.new_token_ids), finish, first, logprobs
                    )
                    first = False
    except ValueError as exc:
        run.finish_reason = "error"
        yield streaming.error_event(f"the engine refused the request: {exc}", 400, "invalid_value")
    except Exception:
        run.finish_reason = "error"
        log.exception("request %s failed while streaming", job.request_id)
        yield streaming.error_event("internal server error while generating", 500, "internal_error")
    if job.include_usage:
        yield streaming.usage_chunk(job, run.num_output_tokens)
    yield streaming.DONE


class RunStreamingResponse(StreamingResponse):
    """An SSE response that closes its Run however the response ends (even before it started)."""

    def __init__(self, run: Run) -> None:
        super().__init__(
            _sse_events(run),
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                "X-Request-Id": run.job.request_id,
            },
        )
        self.run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with contextlib.suppress(Exception):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self.run.close()

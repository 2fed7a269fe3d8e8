"""Relay one request upstream and its response back; observe and capture generation requests."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from proxy.headers import client_headers, upstream_headers
from proxy.metrics import ProxyMetrics
from proxy.observe import Observation
from proxy.request_info import RequestInfo, request_info
from proxy.sse import EventSplitter, event_data
from tollgate.contracts.capture import FINISH_REASONS
from tollgate.contracts.capture_log import CaptureWriter, capture_record

log = logging.getLogger("tollgate.proxy")


@dataclass
class Upstream:
    client: httpx.AsyncClient
    url: str
    metrics: ProxyMetrics
    capture: CaptureWriter | None
    capture_text: bool


def _error(status: int, message: str, kind: str) -> JSONResponse:
    """An OpenAI-style error the proxy itself answers (the upstream never answered)."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


async def _send(up: Upstream, request: Request, content: bytes, label: str) -> httpx.Response | Response:
    target = up.url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    outgoing = up.client.build_request(
        request.method, target, content=content, headers=upstream_headers(request.headers.items())
    )
    try:
        return await up.client.send(outgoing, stream=True)
    except httpx.TimeoutException as exc:
        up.metrics.upstream_errors.labels("timeout").inc()
        up.metrics.requests.labels(label, "504").inc()
        return _error(504, f"the upstream {up.url} did not answer in time ({type(exc).__name__})", "timeout")
    except httpx.HTTPError as exc:
        up.metrics.upstream_errors.labels("connect").inc()
        up.metrics.requests.labels(label, "502").inc()
        return _error(
            502, f"the upstream {up.url} could not be reached: {exc or type(exc).__name__}", "bad_gateway"
        )


async def pass_through(up: Upstream, request: Request) -> Response:
    """Any request that is not a generation: relayed byte for byte, not captured."""
    response = await _send(up, request, await request.body(), "other")
    if not isinstance(response, httpx.Response):
        return response
    up.metrics.requests.labels("other", str(response.status_code)).inc()
    return StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        headers=client_headers(response.headers.items()),
        background=_Close(response),
    )


class _Close:
    """Background task closing the upstream response once the client has the whole body."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    async def __call__(self) -> None:
        await self.response.aclose()


async def generation(up: Upstream, request: Request, endpoint: str) -> Response:
    seen = Observation()
    raw = await request.body()
    try:
        info = request_info(endpoint, orjson.loads(raw))
    except orjson.JSONDecodeError:
        info = None  # the upstream answers the malformed body; the proxy captures nothing
    strip_usage = info is not None and info.stream and not info.usage_requested
    content = raw
    if strip_usage:  # ask for usage so the capture gets real token counts; the client never sees it
        body = orjson.loads(raw)
        options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        body["stream_options"] = {**options, "include_usage": True}
        content = orjson.dumps(body)
    response = await _send(up, request, content, endpoint)
    if not isinstance(response, httpx.Response):
        return response
    status = response.status_code
    up.metrics.requests.labels(endpoint, str(status)).inc()
    headers = client_headers(response.headers.items())
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        try:
            body_bytes = await response.aread()
        finally:
            await response.aclose()
        seen.on_body(body_bytes)
        seen.finish()
        if info is not None and 200 <= status < 300:
            _record(up, info, seen, "complete")
        return Response(body_bytes, status_code=status, headers=headers)
    return StreamingResponse(
        _events(up, response, info, seen, strip_usage, endpoint), status_code=status, headers=headers
    )


async def _events(
    up: Upstream,
    response: httpx.Response,
    info: RequestInfo | None,
    seen: Observation,
    strip_usage: bool,
    endpoint: str,
) -> AsyncIterator[bytes]:
    splitter = EventSplitter()
    relayed = up.metrics.events.labels(endpoint)
    outcome = "abort"  # unless the loop ends: the client went away (the generator was closed)
    try:
        async for piece in response.aiter_raw():
            for event in splitter.feed(piece):
                if seen.on_event(event_data(event)) and strip_usage:
                    continue
                relayed.inc()
                yield event
        rest = splitter.rest()
        if rest:
            seen.on_event(event_data(rest))
            yield rest
        outcome = "complete"
    except httpx.HTTPError as exc:
        up.metrics.upstream_errors.labels("stream").inc()
        log.warning("the upstream's stream broke after %d token chunks: %s", seen.token_chunks, exc)
        outcome = "error"
    finally:
        await response.aclose()
        seen.finish()
        if info is not None and 200 <= response.status_code < 300:
            _record(up, info, seen, outcome)


def _finish_reason(seen: Observation, outcome: str) -> str:
    if outcome != "complete":
        return outcome
    if seen.error is not None:
        return "error"
    reason = seen.finish_reason
    return reason if reason in FINISH_REASONS else "stop"  # tool_calls, content_filter: a natural end


_warned_no_usage = False


def _record(up: Upstream, info: RequestInfo, seen: Observation, outcome: str) -> None:
    if seen.e2e_s is not None:
        up.metrics.e2e.labels(info.endpoint).observe(seen.e2e_s)
    if info.stream and seen.first_token_s is not None:
        up.metrics.ttft.labels(info.endpoint).observe(seen.first_token_s)
    if up.capture is None:
        return
    usage = seen.usage or {}
    prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(completion_tokens, int):
        completion_tokens = seen.token_chunks
    if not isinstance(prompt_tokens, int):
        global _warned_no_usage
        if not _warned_no_usage and outcome == "complete":
            log.warning("the upstream sent no usage; capture lines record prompt_tokens 0")
            _warned_no_usage = True
        prompt_tokens = 0
    up.capture.submit(
        lambda: capture_record(
            request_id=seen.response_id or uuid.uuid4().hex,
            endpoint=info.endpoint,
            model=seen.model or info.model,
            stream=info.stream,
            prompt_text=info.prompt_text,
            system_prompt=info.system_prompt,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            max_tokens=info.max_tokens,
            temperature=info.temperature,
            top_p=info.top_p,
            top_k=info.top_k,
            n_messages=info.n_messages,
            finish_reason=_finish_reason(seen, outcome),
            times=seen.times,
            include_text=up.capture_text,
        )
    )

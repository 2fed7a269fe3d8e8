"""The FastAPI application: OpenAI-compatible routes, /health, /metrics.

`create_app(ctx)` builds one app around one ServerContext; nothing is global, so tests and
benchmarks can run several servers in one process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from reference_server.server.auth import BearerAuthMiddleware
from reference_server.server.bodylimit import DeclaredLengthGuard
from reference_server.server.errors import APIError, install_error_handlers
from reference_server.server.generation import Run, RunStreamingResponse, collect
from reference_server.server.prepare import prepare_chat, prepare_completion
from reference_server.server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    TokenizeChatRequest,
    TokenizeCompletionRequest,
)
from reference_server.server.responses import Job
from reference_server.server.state import Phase, ServerContext
from reference_server.server.tokenize import detokenize, tokenize


def _require_ready(ctx: ServerContext) -> None:
    if ctx.phase is Phase.DRAINING:
        ctx.reject("draining")
        raise APIError(503, "the server is shutting down and accepts no new requests", code="draining")
    if not ctx.ready:
        ctx.reject("not_ready")
        raise APIError(
            503,
            f"the server is not ready ({ctx.status}); retry shortly",
            code="not_ready",
            headers={"Retry-After": "1"},
        )


def _prepare(ctx: ServerContext, build: Callable[[Any, Any], Job], req: Any) -> Job:
    try:
        return build(req, ctx.engine)
    except APIError:
        ctx.reject("invalid_request")
        raise


def _admit(ctx: ServerContext, job: Job) -> Run:
    if not ctx.admission.try_admit():
        ctx.reject("queue_full")
        retry = ctx.admission.retry_after_s()
        raise APIError(
            429,
            f"the server's waiting queue is full ({ctx.settings.max_waiting} waiting requests); "
            f"retry after {retry} s",
            code="queue_full",
            headers={"Retry-After": str(retry)},
        )
    return Run(ctx, job)


async def _serve_job(ctx: ServerContext, job: Job, request: Request) -> Response:
    run = _admit(ctx, job)
    if job.stream:
        return RunStreamingResponse(run)
    return JSONResponse(await collect(run, request), headers={"X-Request-Id": job.request_id})


def create_app(ctx: ServerContext) -> ASGIApp:
    """The ASGI app uvicorn serves: authentication, then the declared-length guard, then FastAPI.

    Both sit outside FastAPI on purpose: inside, Starlette's body limiter would replace their
    JSON answers with a plain-text 413 (see bodylimit.py), and auth must answer before the body.
    """
    app: ASGIApp = DeclaredLengthGuard(create_fastapi_app(ctx), ctx.settings.max_body_bytes, ctx.reject)
    if ctx.settings.api_key:
        app = BearerAuthMiddleware(app, ctx.settings.api_key, ctx.settings.protect_metrics, ctx.reject)
    return app


def create_fastapi_app(ctx: ServerContext) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.start_loading()
        yield
        ctx.close(timeout=max(1.0, ctx.settings.drain_timeout_s))

    app = FastAPI(
        title="Tollgate reference server",
        version="1",
        lifespan=lifespan,
        max_body_size=ctx.settings.max_body_bytes,
    )
    install_error_handlers(app, ctx.settings.max_body_bytes, ctx.reject)
    app.state.ctx = ctx

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, request: Request) -> Response:
        _require_ready(ctx)
        return await _serve_job(ctx, _prepare(ctx, prepare_completion, req), request)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
        _require_ready(ctx)
        return await _serve_job(ctx, _prepare(ctx, prepare_chat, req), request)

    @app.post("/tokenize")
    async def tokenize_route(req: TokenizeChatRequest | TokenizeCompletionRequest) -> dict:
        _require_ready(ctx)
        return _prepare(ctx, tokenize, req)

    @app.post("/detokenize")
    async def detokenize_route(req: DetokenizeRequest) -> dict:
        _require_ready(ctx)
        return _prepare(ctx, detokenize, req)

    @app.get("/v1/models")
    async def models() -> dict:
        _require_ready(ctx)
        engine = ctx.engine
        return {
            "object": "list",
            "data": [
                {
                    "id": engine.model_name,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "tollgate",
                    "root": engine.config.model,
                    "max_model_len": engine.max_model_len,
                }
            ],
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        status = ctx.status
        return JSONResponse({"status": status}, status_code=200 if status == "ok" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        if ctx.metrics is None:
            raise APIError(503, f"metrics are not available yet ({ctx.status})", code="not_ready")
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app

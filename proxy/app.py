"""The proxy's ASGI app: generation endpoints observed and captured, everything else relayed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy import relay
from proxy.metrics import ProxyMetrics
from proxy.request_info import CHAT, COMPLETIONS
from tollgate.contracts.capture_log import CaptureWriter

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass(frozen=True)
class ProxySettings:
    upstream: str
    capture_path: str | None = None
    capture_text: bool = False
    capture_max_bytes: int | None = None
    read_timeout_s: float = 600.0
    max_connections: int = 1000


def normalize_upstream(url: str) -> str:
    """`http://host:port` from what users paste (a trailing `/` or `/v1` is dropped)."""
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def capture_writer(settings: ProxySettings, metrics: ProxyMetrics) -> CaptureWriter | None:
    """The capture log's writer (tollgate.contracts.capture_log), None without --capture."""
    if not settings.capture_path:
        return None
    return CaptureWriter(
        settings.capture_path,
        include_text=settings.capture_text,
        max_bytes=settings.capture_max_bytes,
        on_drop=metrics.capture_dropped.inc,
    )


def upstream_client(settings: ProxySettings) -> httpx.AsyncClient:
    """One pooled client for every relayed request; only the read timeout waits on generation."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, read=settings.read_timeout_s),
        limits=httpx.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections
        ),
    )


def create_app(settings: ProxySettings) -> FastAPI:
    metrics = ProxyMetrics()
    state: dict[str, relay.Upstream] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        capture = capture_writer(settings, metrics)
        client = upstream_client(settings)
        state["up"] = relay.Upstream(
            client, normalize_upstream(settings.upstream), metrics, capture, settings.capture_text
        )
        try:
            yield
        finally:
            await client.aclose()
            if capture is not None:
                capture.close()  # writes every queued line before the process exits

    app = FastAPI(title="tollgate proxy", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics")
    async def own_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(COMPLETIONS)
    async def completions(request: Request) -> Response:
        return await relay.generation(state["up"], request, COMPLETIONS)

    @app.post(CHAT)
    async def chat(request: Request) -> Response:
        return await relay.generation(state["up"], request, CHAT)

    @app.api_route("/{path:path}", methods=METHODS)
    async def other(request: Request, path: str) -> Response:
        return await relay.pass_through(state["up"], request)

    app.state.metrics = metrics
    return app

"""A small real server whose latency grows with load, exposing vLLM-named metrics via prometheus_client.

    python -m tests.monitors.loadserver --port N

POST /v1/completions waits `base * in_flight` seconds before its first token (like a batch that
slows as it fills), records vLLM's TTFT histogram, request-success counter and running-requests gauge
(names from tollgate.contracts.server_metrics, as the reference server writes them), and answers.
Used where the shared reference server would be too slow to load on the 2-core test box.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tollgate.contracts.server_metrics import VLLM_REQUEST_SUCCESS, VLLM_RUNNING, VLLM_TTFT, family

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def create_app(base_s: float) -> FastAPI:
    reg = CollectorRegistry()
    ttft = Histogram(VLLM_TTFT, "TTFT", ["model_name"], buckets=BUCKETS, registry=reg)
    done = Counter(family(VLLM_REQUEST_SUCCESS), "finished", ["model_name", "finished_reason"], registry=reg)
    running = Gauge(VLLM_RUNNING, "in flight", ["model_name"], registry=reg)
    app = FastAPI()
    state = {"in_flight": 0}

    @app.post("/v1/completions")
    async def complete() -> JSONResponse:
        state["in_flight"] += 1
        running.labels("tiny").set(state["in_flight"])
        delay = base_s * state["in_flight"]
        await asyncio.sleep(delay)
        ttft.labels("tiny").observe(delay)
        done.labels("tiny", "stop").inc()
        state["in_flight"] -= 1
        running.labels("tiny").set(state["in_flight"])
        return JSONResponse({"choices": [{"text": "ok"}]})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health")
    def health() -> Response:
        return Response("ok")

    return app


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--base", type=float, default=0.02, help="seconds of TTFT per request in flight")
    a = p.parse_args()
    uvicorn.run(create_app(a.base), host="127.0.0.1", port=a.port, log_level="warning")

"""The canary's HTTP endpoint for progressive delivery: Flagger webhooks and Argo Rollouts web metrics.

See release/canary_cli.py for the contract of each route. Every call judges the window ending now,
in a worker thread (`asyncio.to_thread`): a judgement reads SQLite or waits on Prometheus, and inside
the async handler it would hold the event loop, so a second controller's call (or /health) would
wait for the first.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from release.canary import judge
from release.canary_flags import judgement_of
from release.sources import PrometheusSource, SourceError, StoreSource
from tollgate.contracts.durations import DurationError, parse_duration

FLAGGER_STATUS = {"pass": 200, "marginal": 412, "fail": 412, "nodata": 503}  # Flagger fails on any non-2xx


def overrides(args: argparse.Namespace, given: dict[str, Any]) -> tuple[str, str, float]:
    """baseline, canary and window from a webhook call's metadata / query, else the flags."""
    window = given.get("window")
    return (
        str(given.get("baseline") or args.baseline),
        str(given.get("canary") or args.canary),
        parse_duration(window, "window") if window else args.window,
    )


def create_app(args: argparse.Namespace, source: StoreSource | PrometheusSource) -> Any:
    app = FastAPI(title="tollgate canary")
    judgement = judgement_of(args)

    def run(given: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            baseline, canary, window = overrides(args, given)
            return 0, judge(source, baseline, canary, window, judgement)
        except (SourceError, DurationError) as exc:
            return 400, {"error": str(exc)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/flagger")
    async def flagger(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not {"name", "namespace", "phase"} <= body.keys():
            return JSONResponse({"error": "expected Flagger's JSON {name, namespace, phase, metadata}"}, 400)
        metadata = body.get("metadata") or {}
        error, result = await asyncio.to_thread(run, metadata if isinstance(metadata, dict) else {})
        if error:
            return JSONResponse(result, error)
        result["rollout"] = {k: body.get(k) for k in ("name", "namespace", "phase")}
        return JSONResponse(result, FLAGGER_STATUS[result["verdict"]])

    @app.api_route("/analysis", methods=["GET", "POST"])
    async def analysis(request: Request) -> JSONResponse:
        given: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                body = {}
            given.update(body if isinstance(body, dict) else {})
        error, result = await asyncio.to_thread(run, given)
        return JSONResponse(result, error or 200)

    return app

"""A Slack-compatible incoming-webhook receiver (FastAPI/uvicorn) for tests and the demo.

    python -m monitors.webhook_receiver --port 8099 --record reports/slack.jsonl [--fail-429 3 --fail-500 2]

POST any path with a JSON body: answers like Slack ("ok", or 400 "invalid_payload"/"no_text"), prints
what a Slack client would show and appends {"received_at", "path", "payload"} to the JSONL record.
Fault injection, in order: the first --fail-429 requests get 429 with Retry-After, the next --fail-500
get 500, later ones succeed. Rejected requests are not recorded. GET /messages lists what was accepted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from monitors.slack import plain_text


def create_app(
    record: Path | None, fail_429: int = 0, fail_500: int = 0, retry_after: float = 1.0
) -> FastAPI:
    app = FastAPI(title="tollgate webhook receiver")
    lock = threading.Lock()
    state = {"requests": 0}
    messages: list[dict] = []

    @app.get("/messages")
    def list_messages() -> JSONResponse:
        with lock:
            return JSONResponse({"messages": list(messages), "requests": state["requests"]})

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> PlainTextResponse:
        body = await request.body()
        with lock:
            state["requests"] += 1
            n = state["requests"]
        if n <= fail_429:
            return PlainTextResponse("rate_limited", 429, headers={"Retry-After": f"{retry_after:g}"})
        if n <= fail_429 + fail_500:
            return PlainTextResponse("internal_error", 500)
        try:
            payload = json.loads(body)
        except ValueError:
            return PlainTextResponse("invalid_payload", 400)
        if not isinstance(payload, dict):
            return PlainTextResponse("invalid_payload", 400)
        if not any(payload.get(k) for k in ("text", "blocks", "attachments", "alerts")):
            return PlainTextResponse("no_text", 400)
        entry = {"received_at": time.time(), "path": "/" + path, "payload": payload}
        with lock:
            messages.append(entry)
            if record is not None:
                with record.open("a") as fh:
                    fh.write(json.dumps(entry) + "\n")
        shown = plain_text(payload) if "alerts" not in payload else f"[alertmanager] {payload['status']}"
        print(f"--- message {len(messages)} on /{path}\n{shown}", flush=True)
        return PlainTextResponse("ok")

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m monitors.webhook_receiver", description=__doc__.split("\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--record", type=Path, default=None, help="JSONL file to append accepted messages to")
    p.add_argument(
        "--fail-429", type=int, default=0, metavar="N", help="answer the first N requests with 429"
    )
    p.add_argument("--fail-500", type=int, default=0, metavar="N", help="then answer N requests with 500")
    p.add_argument("--retry-after", type=float, default=1.0, help="seconds in the 429 Retry-After header")
    args = p.parse_args(argv)
    if min(args.fail_429, args.fail_500) < 0:
        p.error("--fail-429 and --fail-500 must be >= 0")
    if args.record is not None:
        args.record.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(args.record, args.fail_429, args.fail_500, args.retry_after)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())

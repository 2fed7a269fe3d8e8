"""Deterministic OpenAI-compatible mock server with known timing, for benchmarks and tests.

Every request streams `max_tokens` tokens: the first chunk TTFT after the request arrives, then one
chunk of `tokens_per_chunk` tokens every `tokens_per_chunk * itl` seconds, on absolute deadlines so
timer jitter never accumulates. The server records when it actually wrote each chunk (`/mock/truth`),
which is the ground truth a load generator's measurements are compared with.

Faults, every `fault_every`-th request: `malformed` (a non-JSON data line), `no_usage`, `http500`,
`drop` (connection cut mid-stream), `error_event` (an error object in the stream), `mixed` (all of
them and a clean request in turn).
`POST /mock/stall {"seconds": S}` holds every chunk (and every first token) until now + S.

    python -m loadgen.mock_server --port 0 --ttft-ms 50 --itl-ms 10     # prints "MOCK_URL http://..."
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MIXED = ("none", "malformed", "no_usage", "http500", "drop", "error_event")
FAULTS = (*MIXED, "mixed")


@dataclass
class MockConfig:
    ttft_ms: float = 20.0
    itl_ms: float = 5.0
    tokens_per_chunk: int = 1
    default_max_tokens: int = 16
    fault: str = "none"
    fault_every: int = 1
    per_chunk_usage: bool = False


class MockState:
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.requests = 0
        self.stall_until = 0.0
        self.ttft_s: list[float] = []
        self.itl_s: list[float] = []
        self.writes: dict[str, list[float]] = {}  # X-Request-Id -> unix times of its content chunks
        self.arrivals: dict[str, float] = {}  # X-Request-Id -> unix time its handler started

    def truth(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "requests": self.requests,
            "ttft_count": len(self.ttft_s),
            "itl_count": len(self.itl_s),
        }
        for name, values in (("ttft", self.ttft_s), ("itl", self.itl_s)):
            if values:
                arr = np.asarray(values) * 1000.0
                for q in (50, 90, 99):
                    out[f"{name}_p{q}_ms"] = float(np.percentile(arr, q, method="inverted_cdf"))
                out[f"{name}_mean_ms"] = float(arr.mean())
        return out


def create_app(config: MockConfig) -> FastAPI:
    app = FastAPI(title="tollgate mock server")
    state = MockState(config)
    app.state.mock = state

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {
            "object": "list",
            "data": [{"id": "mock-model", "object": "model", "owned_by": "tollgate-mock"}],
        }

    @app.get("/mock/truth")
    async def truth() -> dict:
        return state.truth()

    @app.get("/mock/writes")
    async def writes() -> dict:
        return state.writes

    @app.get("/mock/arrivals")
    async def arrivals() -> dict:
        """When each request's handler started: what the mock cannot see is before it (its accept
        queue and event-loop backlog, and the client's own write)."""
        return state.arrivals

    @app.post("/mock/reset")
    async def reset() -> dict:
        state.ttft_s.clear()
        state.itl_s.clear()
        state.writes.clear()
        state.arrivals.clear()
        state.requests = 0
        return {"ok": True}

    @app.post("/mock/config")
    async def configure(request: Request) -> dict:
        for key, value in (await request.json()).items():
            if hasattr(state.config, key):
                setattr(state.config, key, type(getattr(state.config, key))(value))
        return asdict(state.config)

    @app.post("/mock/stall")
    async def stall(request: Request) -> dict:
        seconds = float((await request.json()).get("seconds", 1.0))
        state.stall_until = asyncio.get_running_loop().time() + seconds
        return {"stalled_s": seconds, "until_unix": time.time() + seconds}

    async def complete(request: Request, chat: bool):
        arrived = asyncio.get_running_loop().time()
        state.arrivals[request.headers.get("x-request-id", f"anon-{state.requests}")] = time.time()
        body = await request.json()
        state.requests += 1
        cfg = state.config
        faulty = cfg.fault != "none" and state.requests % max(cfg.fault_every, 1) == 0
        fault = cfg.fault if faulty else "none"
        if fault == "mixed":  # request k gets fault k of the cycle, "none" included
            fault = MIXED[state.requests % len(MIXED)]
        if fault == "http500":
            return JSONResponse(
                {"error": {"message": "injected failure", "type": "server_error", "code": 500}}, 500
            )
        n_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or cfg.default_max_tokens)
        prompt = (
            body.get("prompt")
            if not chat
            else " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        )
        prompt_tokens = len(str(prompt).split())
        if body.get("stream"):
            usage_wanted = (
                bool((body.get("stream_options") or {}).get("include_usage")) and fault != "no_usage"
            )
            writes = state.writes.setdefault(
                request.headers.get("x-request-id", f"anon-{state.requests}"), []
            )
            stream = _stream(state, arrived, n_tokens, prompt_tokens, chat, usage_wanted, fault, writes)
            return StreamingResponse(stream, media_type="text/event-stream")
        await _sleep_until(state, arrived + (cfg.ttft_ms + cfg.itl_ms * (n_tokens - 1)) / 1000.0)
        text = " tok" * n_tokens
        choice = {
            "index": 0,
            "finish_reason": "length",
            **({"message": {"role": "assistant", "content": text}} if chat else {"text": text}),
        }
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": n_tokens,
            "total_tokens": prompt_tokens + n_tokens,
        }
        return {
            "id": "mock",
            "object": "chat.completion" if chat else "text_completion",
            "model": "mock-model",
            "choices": [choice],
            **({} if fault == "no_usage" else {"usage": usage}),
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await complete(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete(request, chat=False)

    return app


async def _sleep_until(state: MockState, deadline: float) -> float:
    loop = asyncio.get_running_loop()
    deadline = max(deadline, state.stall_until)
    while (wait := deadline - loop.time()) > 0:
        await asyncio.sleep(wait)
        deadline = max(deadline, state.stall_until)  # a stall may begin while we wait
    return deadline


async def _stream(
    state: MockState,
    arrived: float,
    n_tokens: int,
    prompt_tokens: int,
    chat: bool,
    usage: bool,
    fault: str,
    writes: list[float],
) -> AsyncIterator[bytes]:
    cfg = state.config
    loop = asyncio.get_running_loop()
    per_chunk = max(1, cfg.tokens_per_chunk)
    deadline, sent, last_write = arrived + cfg.ttft_ms / 1000.0, 0, None
    while sent < n_tokens:
        k = min(per_chunk, n_tokens - sent)
        if sent:
            deadline += k * cfg.itl_ms / 1000.0
        deadline = await _sleep_until(state, deadline)
        sent += k
        if fault == "malformed" and sent > n_tokens // 2:
            yield b"data: {not json\n\n"
            return
        if fault == "drop" and sent > n_tokens // 2:
            raise ConnectionResetError("mock: injected connection drop")
        if fault == "error_event" and sent > n_tokens // 2:
            yield b'data: {"error": {"message": "injected stream error", "type": "server_error"}}\n\n'
            return
        now = loop.time()
        if last_write is None:
            state.ttft_s.append(now - arrived)
        else:
            state.itl_s.append((now - last_write) / k)
        last_write = now
        writes.append(time.time())
        delta = {"delta": {"content": " tok" * k}} if chat else {"text": " tok" * k}
        chunk = {
            "id": "mock",
            "model": "mock-model",
            "choices": [{"index": 0, **delta, "finish_reason": None}],
        }
        if cfg.per_chunk_usage:
            chunk["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": sent}
        yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
    final = {
        "id": "mock",
        "model": "mock-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
    }
    yield b"data: " + json.dumps(final).encode() + b"\n\n"
    if usage:
        totals = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": n_tokens,
            "total_tokens": prompt_tokens + n_tokens,
        }
        yield b"data: " + json.dumps({"id": "mock", "choices": [], "usage": totals}).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadgen.mock_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ttft-ms", type=float, default=MockConfig.ttft_ms)
    parser.add_argument("--itl-ms", type=float, default=MockConfig.itl_ms)
    parser.add_argument("--tokens-per-chunk", type=int, default=MockConfig.tokens_per_chunk)
    parser.add_argument(
        "--max-tokens", type=int, default=MockConfig.default_max_tokens, dest="default_max_tokens"
    )
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--fault-every", type=int, default=1)
    parser.add_argument("--per-chunk-usage", action="store_true")
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    print(f"MOCK_URL http://{host}:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(create_app(MockConfig(**args)), log_level="warning", access_log=False)
    )
    server.run(sockets=[sock])
    return 0


@dataclass
class MockHandle:
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def start_mock_server(*args: str, timeout_s: float = 30.0) -> Iterator[MockHandle]:
    """Run the mock server in a subprocess on a free loopback port; stop it on exit."""
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.mock_server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    handle = None
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("MOCK_URL "):
            raise RuntimeError(f"mock server did not start (exit {proc.poll()}): {line!r}")
        handle = MockHandle(line.split()[1], proc)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(handle.url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mock server did not become healthy")
            time.sleep(0.05)
        yield handle
    finally:
        if handle is not None:
            handle.stop()
        elif proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())

"""The reference server and vLLM CPU side by side over HTTP: same checkpoint, same prompts, same run.

Both servers are started as processes on 127.0.0.1, one after the other, on the same Hugging Face
checkpoint directory (`tollgate export` of SmolLM2-135M, and a 6-layer random-weight Llama with
SmolLM2's tokenizer: the `tiny` preset cannot be served by vLLM, it has a byte vocabulary without a
tokenizer.json). Each gets the same streamed /v1/completions requests (~100-word prompts, 64 greedy
output tokens, EOS ignored) at concurrency 1, 16 and 32 (closed loop, `requests` per level), and reports
output tokens per wall second and TTFT p50 (first streamed chunk with a choice: vLLM sends one per token).

    python -m bench server --vllm-python .peers/vllm/bin/python   (or --side-by-side-only)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VLLM_PYTHON = REPO / ".peers" / "vllm" / "bin" / "python"
CONCURRENCY = (1, 16, 32)
REQUESTS = {1: 4, 16: 32, 32: 64}  # per level: two waves at 16 and 32, four sequential at 1
OUTPUT_TOKENS = 64
PROMPT_WORDS = 100
MAX_MODEL_LEN = 2048
# `tollgate serve --threads`: on this 2-core shared host 1 thread ran the 6-layer checkpoint 7x faster
# over HTTP than the default 2 (37 vs 5 tok/s at concurrency 1, same load; measured); None = default
REFERENCE_THREADS: int | None = 1
START_TIMEOUT_S = 600  # vLLM CPU compiles for ~3 minutes before it answers /health
WORDS = [
    "the",
    "server",
    "model",
    "token",
    "request",
    "latency",
    "batch",
    "memory",
    "cache",
    "stream",
    "answer",
    "question",
    "river",
    "mountain",
    "city",
    "history",
    "science",
    "music",
    "garden",
    "market",
    "window",
    "engine",
    "signal",
    "quiet",
    "bright",
    "early",
    "later",
    "because",
    "through",
]


def prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(PROMPT_WORDS)) for _ in range(n)]


def checkpoints(tmp: Path) -> dict[str, Path]:
    """The exported SmolLM2 and a 6-layer random Llama of its width with its tokenizer."""
    from reference_server.export import export_model
    from reference_server.loader import write_checkpoint

    smol = export_model("smollm2-135m", tmp / "smollm2-135m")
    small = tmp / "llama-6l-random"
    cfg = {**json.loads((smol / "config.json").read_text()), "num_hidden_layers": 6}
    write_checkpoint(cfg, small)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(smol / name, small / name)
    return {"smollm2-135m": smol, "llama-6l-random": small}


def server_command(kind: str, model: Path, port: int, vllm_python: Path) -> tuple[list[str], dict[str, str]]:
    common = ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", "bench"]
    if kind == "reference":
        argv = [sys.executable, "-m", "tollgate", "serve", "--model", str(model), "--device", "cpu"]
        if REFERENCE_THREADS is not None:
            argv += ["--threads", str(REFERENCE_THREADS)]
        return [*argv, "--max-model-len", str(MAX_MODEL_LEN), *common], {"PYTHONPATH": str(REPO)}
    argv = [str(vllm_python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)]
    argv += ["--dtype", "float32", "--max-model-len", str(MAX_MODEL_LEN), *common]
    return argv, {"VLLM_CPU_KVCACHE_SPACE": "2"}


def start(kind: str, model: Path, vllm_python: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv, env = server_command(kind, model, port, vllm_python)
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited {proc.returncode} while starting; see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_process(proc)
    raise RuntimeError(f"{kind} server not ready after {START_TIMEOUT_S}s; see {log}")


async def one(client: httpx.AsyncClient, url: str, prompt: str) -> tuple[float, int]:
    """(TTFT s, output tokens) of one streamed completion."""
    body = {
        "model": "bench",
        "prompt": prompt,
        "max_tokens": OUTPUT_TOKENS,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start, ttft, tokens = time.perf_counter(), None, 0
    async with client.stream("POST", url + "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and ttft is None:
                ttft = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (ttft if ttft is not None else float("nan")), tokens


async def level(url: str, texts: list[str], concurrency: int) -> dict[str, float]:
    queue = list(texts)
    ttfts: list[float] = []
    total = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal total
        while queue:
            ttft, tokens = await one(client, url, queue.pop())
            ttfts.append(ttft)
            total += tokens

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {"output_tps": total / wall, "ttft_p50_ms": statistics.median(ttfts) * 1e3, "requests": len(texts)}


def rss_mib(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def measure(kind: str, model: Path, vllm_python: Path, log: Path, say: Any) -> dict[str, Any]:
    started = time.monotonic()
    proc, url = start(kind, model, vllm_python, log)
    try:
        ready_s = time.monotonic() - started
        asyncio.run(level(url, prompts(2, seed=99), 2))  # warm-up, not measured
        result: dict[str, Any] = {"ready_s": ready_s, "concurrency": {}}
        for c in CONCURRENCY:
            result["concurrency"][str(c)] = asyncio.run(level(url, prompts(REQUESTS[c], seed=c), c))
            say(f"{kind} {model.name} c={c}: {result['concurrency'][str(c)]}")
        result["rss_mib"] = rss_mib(proc.pid)
        return result
    finally:
        stop_process(proc)


CHECKPOINTS = ("smollm2-135m", "llama-6l-random")


def side_by_side(
    vllm_python: Path, say: Any, quick: bool = False, names: list[str] | None = None
) -> dict[str, Any]:
    """Both servers on the named checkpoints (default: both; quick: the 6-layer one) with quick meaning
    fewer requests and 32 output tokens; {checkpoint: {"reference": ..., "vllm": ...}}."""
    names = names or (["llama-6l-random"] if quick else list(CHECKPOINTS))
    global OUTPUT_TOKENS, REQUESTS
    if quick:
        OUTPUT_TOKENS, REQUESTS = 32, {1: 2, 16: 16, 32: 32}
    # SIGTERM (e.g. a CI timeout) unwinds through the finally blocks, so no server is left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-vllm-") as tmp:
        for name, path in checkpoints(Path(tmp)).items():
            if name not in names:
                continue
            out[name] = {}
            for kind in ("reference", "vllm"):
                log = Path(tmp) / f"{kind}-{name}.log"
                try:
                    out[name][kind] = measure(kind, path, vllm_python, log, say)
                except (RuntimeError, httpx.HTTPError) as exc:
                    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                    say(f"{kind} {name}: failed ({exc})\n{tail}")
                    out[name][kind] = {"error": str(exc)}
    return out


def rows(results: dict[str, Any]) -> list[list[Any]]:
    """[checkpoint, metric, reference, vllm, ratio, target] rows for the bench table."""
    table = []
    for name, sides in results.items():
        ref, peer = sides.get("reference", {}), sides.get("vllm", {})
        if "concurrency" not in ref or "concurrency" not in peer:
            table.append([name, "side by side", ref.get("error", "ok"), peer.get("error", "ok"), "", ""])
            continue
        for c in CONCURRENCY:
            r, v = ref["concurrency"][str(c)], peer["concurrency"][str(c)]
            table.append(
                [
                    name,
                    f"conc {c} output tok/s",
                    r["output_tps"],
                    v["output_tps"],
                    r["output_tps"] / v["output_tps"],
                    ">= 1.3",
                ]
            )
        r, v = ref["concurrency"]["1"], peer["concurrency"]["1"]
        table.append(
            [
                name,
                "conc 1 TTFT p50 ms",
                r["ttft_p50_ms"],
                v["ttft_p50_ms"],
                r["ttft_p50_ms"] / v["ttft_p50_ms"],
                "<= 1",
            ]
        )
        for c in CONCURRENCY[1:]:
            r, v = ref["concurrency"][str(c)], peer["concurrency"][str(c)]
            table.append(
                [
                    name,
                    f"conc {c} TTFT p50 ms",
                    r["ttft_p50_ms"],
                    v["ttft_p50_ms"],
                    r["ttft_p50_ms"] / v["ttft_p50_ms"],
                    "",
                ]
            )
        table.append(
            [
                name,
                "server RSS MiB after the run",
                ref["rss_mib"],
                peer["rss_mib"],
                ref["rss_mib"] / peer["rss_mib"],
                "",
            ]
        )
    return table

"""What `tollgate proxy` adds, against the deterministic mock server (loadgen/mock_server.py), same run.

ttft     sequential streamed requests, direct and through the proxy in alternation (so drift in the
         machine's load hits both alike): client TTFT p50/p99 of each and their difference.
         Target: proxy - direct < 1 ms at p50 on loopback.
relay    SSE chunks/s a client receives from one long stream and from 8 concurrent ones, direct vs
         proxied (the mock writes chunks as fast as it can: --itl-ms 0).

    python -m bench proxy [--quick]
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import print_table, write_result
from loadgen.mock_server import start_mock_server
from proxy.launch import start_proxy


def _ttft(client: httpx.Client, url: str) -> float:
    body = {"model": "mock", "prompt": "hello", "max_tokens": 4, "stream": True}
    start = time.perf_counter()
    first = None
    with client.stream("POST", url + "/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if first is None and line.startswith("data: {"):
                first = time.perf_counter() - start
    return first if first is not None else float("nan")


def ttft(mock_url: str, proxy_url: str, n: int, proxy_pid: int) -> dict[str, Any]:
    import psutil

    direct, proxied = [], []
    proc = psutil.Process(proxy_pid)
    with httpx.Client(timeout=30) as client:
        for _ in range(10):  # warm both paths (connections, JIT-free but caches)
            _ttft(client, mock_url), _ttft(client, proxy_url)
        cpu = proc.cpu_times()
        for i in range(n):
            order = [(direct, mock_url), (proxied, proxy_url)]
            for bucket, url in order if i % 2 else order[::-1]:
                bucket.append(_ttft(client, url))
        spent = sum(proc.cpu_times()[:2]) - sum(cpu[:2])
    d, p = np.array(direct) * 1000, np.array(proxied) * 1000
    return {
        "requests_each": n,
        "direct_p50_ms": float(np.percentile(d, 50)),
        "direct_p99_ms": float(np.percentile(d, 99)),
        "proxy_p50_ms": float(np.percentile(p, 50)),
        "proxy_p99_ms": float(np.percentile(p, 99)),
        "added_p50_ms": float(np.percentile(p, 50) - np.percentile(d, 50)),
        "added_p99_ms": float(np.percentile(p, 99) - np.percentile(d, 99)),
        # CPU the proxy process spent per relayed request: its cost without the machine's scheduling noise
        "proxy_cpu_ms_per_request": spent * 1000 / n,
        "load_average_1m": os.getloadavg()[0],
    }


def _stream_chunks(url: str, tokens: int, out: list[int]) -> None:
    body = {"model": "mock", "prompt": "hello", "max_tokens": tokens, "stream": True}
    count = 0
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            count += line.startswith("data: {")
    out.append(count)


def relay(url: str, streams: int, tokens: int) -> float:
    counts: list[int] = []
    threads = [threading.Thread(target=_stream_chunks, args=(url, tokens, counts)) for _ in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    n, tokens = (100, 2000) if quick else (400, 5000)
    with tempfile.TemporaryDirectory() as tmp:
        capture = Path(tmp) / "capture.jsonl"
        with (
            start_mock_server("--ttft-ms", "5", "--itl-ms", "1") as mock,
            start_proxy(mock.url, "--capture", str(capture)) as proxy,
        ):
            latency = ttft(mock.url, proxy.url, n, proxy.proc.pid)
        with (
            start_mock_server("--ttft-ms", "1", "--itl-ms", "0") as mock,
            start_proxy(mock.url, "--capture", str(capture)) as proxy,
        ):
            rates = {}
            for streams in (1, 8):
                rates[f"direct_{streams}"] = relay(mock.url, streams, tokens)
                rates[f"proxy_{streams}"] = relay(proxy.url, streams, tokens)
    print_table(
        f"tollgate proxy: client TTFT, {n} streamed requests each, alternating (mock TTFT 5 ms)",
        ["path", "p50 ms", "p99 ms"],
        [
            ["direct", latency["direct_p50_ms"], latency["direct_p99_ms"]],
            ["through proxy", latency["proxy_p50_ms"], latency["proxy_p99_ms"]],
            ["added by proxy", latency["added_p50_ms"], latency["added_p99_ms"]],
            ["proxy CPU per request", latency["proxy_cpu_ms_per_request"], ""],
        ],
    )
    print_table(
        f"tollgate proxy: SSE chunks/s received ({tokens} chunks per stream, mock as fast as it can)",
        ["streams", "direct", "through proxy", "proxy / direct"],
        [
            [s, rates[f"direct_{s}"], rates[f"proxy_{s}"], rates[f"proxy_{s}"] / rates[f"direct_{s}"]]
            for s in (1, 8)
        ],
    )
    path = write_result(
        "proxy",
        {
            "ttft": latency,
            "relay_chunks_per_s": rates,
            "target_added_p50_ms": 1.0,
            "meets_target": latency["added_p50_ms"] < 1.0,
        },
    )
    print(f"wrote {path}")
    return 0

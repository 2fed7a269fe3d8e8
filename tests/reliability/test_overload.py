"""Overload: open-loop arrivals far beyond the server's capacity, through `tollgate load` (Locust)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.reliability.helpers import metric_values, run_cli, wait_until
from tests.support.servers import ServerHandle
from tollgate.contracts import validate_summary

MAX_NUM_SEQS, MAX_WAITING = 4, 8
OUTPUT_TOKENS = 4
BODY = {
    "model": "tiny",
    "prompt": "the quick brown fox " * 4,
    "max_tokens": OUTPUT_TOKENS,
    "ignore_eos": True,
}


def measure_capacity(url: str, headers: dict[str, str], seconds: float = 3.0) -> float:
    """Completed requests/s with every engine slot busy (closed loop, MAX_NUM_SEQS clients)."""
    deadline = time.monotonic() + seconds

    def client() -> int:
        done = 0
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < deadline:
                done += http.post(f"{url}/v1/completions", json=BODY, headers=headers).status_code == 200
        return done

    start = time.monotonic()
    with ThreadPoolExecutor(MAX_NUM_SEQS) as pool:
        done = sum(pool.map(lambda _: client(), range(MAX_NUM_SEQS)))
    return done / (time.monotonic() - start)


class Watcher(threading.Thread):
    """Samples /health, running + waiting requests and the server's RSS every 0.5 s while the load runs."""

    def __init__(self, url: str, pid: int) -> None:
        super().__init__(daemon=True)
        self.url, self.proc = url, psutil.Process(pid)
        self.health: list[int] = []
        self.in_flight: list[float] = []
        self.rss: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self.stop.wait(0.5):
                try:
                    self.health.append(http.get(f"{self.url}/health").status_code)
                except httpx.HTTPError:
                    self.health.append(0)
                m = metric_values(self.url)
                self.in_flight.append(m["vllm:num_requests_waiting"] + m["vllm:num_requests_running"])
                self.rss.append(self.proc.memory_info().rss)


def _overload(server: ServerHandle, tmp_path: Path, figures, seconds: int, factor: float) -> None:
    """Drive `server` (started with MAX_NUM_SEQS running and MAX_WAITING waiting) at `factor` x capacity."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    capacity = measure_capacity(server.url, headers)
    rss_before = psutil.Process(server.proc.pid).memory_info().rss
    rate = max(5.0, factor * capacity)
    watcher = Watcher(server.url, server.proc.pid)
    watcher.start()
    out = run_cli(
        "load", "--url", server.url, f"--api-key={server.api_key}", "--endpoint", "completions", "--rate", f"{rate:.1f}",
        "--arrival", "poisson", "--input-tokens", "64", "--output-tokens", str(OUTPUT_TOKENS), "--ignore-eos",
        "--duration", f"{seconds}s", "--seed", "3", "--name", "overload", "--out", str(tmp_path / "runs"),
        timeout=seconds + 120,
    )  # fmt: skip
    watcher.stop.set()
    watcher.join(timeout=15)
    assert out.returncode in (0, 1), f"tollgate load crashed ({out.returncode}):\n{out.stderr[-3000:]}"
    run = Path(out.stdout.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    assert validate_summary(summary) == []

    requests = summary["requests"]
    tried = int(requests["completed"]) + int(requests["failed"])
    rejected = sum(n for reason, n in summary["errors"].items() if "429" in str(reason))
    figures.requests += tried
    figures.faults += rejected
    figures.notes.append(f"capacity {capacity:.1f} req/s, offered {rate:.0f} req/s, {rejected} answered 429")

    # the server stayed up and healthy the whole time
    assert watcher.health and all(code == 200 for code in watcher.health), watcher.health
    assert server.proc.poll() is None
    # excess answered 429; admitted requests all completed (no failure other than 429)
    assert rejected > 0, summary["errors"]
    assert int(requests["failed"]) == rejected, summary["errors"]
    assert int(requests["completed"]) > 0
    # requests in the engine never exceeded the admission bound (running + waiting), memory stayed bounded
    assert max(watcher.in_flight) <= MAX_NUM_SEQS + MAX_WAITING, watcher.in_flight
    assert max(watcher.rss) < rss_before + 512 * 2**20, (rss_before, max(watcher.rss))
    # every KV block is free again and nothing is left running or waiting
    wait_until(
        lambda: (
            (m := metric_values(server.url))["vllm:kv_cache_usage_perc"] == 0
            and m["vllm:num_requests_running"] == 0
            and m["vllm:num_requests_waiting"] == 0
        ),
        30,
        "KV cache usage 0 and no request running or waiting after the overload",
    )
    assert (
        httpx.post(f"{server.url}/v1/completions", json=BODY, headers=headers, timeout=60).status_code == 200
    )


@pytest.mark.timeout(240)
def test_overload_10x_capacity_open_loop_30s(shared_server, tmp_path, figures):
    """Injects open-loop Poisson arrivals at 10x the measured capacity for 30 s (max-num-seqs 4,
    max-waiting 8); must hold: /health answers 200 throughout, every excess request gets 429 and every
    admitted one completes, running + waiting stays <= 4 + 8, RSS grows < 512 MiB, and afterwards
    vllm:kv_cache_usage_perc, running and waiting are all back to 0. Security: the API key passed to
    `tollgate load` appears in no file of the run folder nor in its output."""
    _overload(shared_server, tmp_path, figures, seconds=30, factor=10.0)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_overload_20x_capacity_open_loop_5min(shared_server, tmp_path, figures):
    """Soak: injects open-loop arrivals at 20x capacity for 5 minutes; must hold: the same as the
    30 s overload (healthy, 429 for the excess, admitted complete, bounded memory and queue, KV freed)."""
    _overload(shared_server, tmp_path, figures, seconds=300, factor=20.0)

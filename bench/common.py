"""Shared helpers for benchmarks: result files, tables, and stopping the servers a benchmark started."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from tollgate.contracts.files import write_json_atomic
from tollgate.contracts.run_folder import read_requests, read_summary

if TYPE_CHECKING:
    import pandas as pd

BENCH_DIR = Path(os.environ.get("TOLLGATE_BENCH_DIR", "reports/bench"))


def environment() -> dict[str, Any]:
    import psutil

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "mem_total_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write reports/bench/<name>.json atomically and return its path."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    body = {"benchmark": name, "created_at": time.time(), "environment": environment(), **payload}
    return write_json_atomic(path, body, default=float)


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col != columns[0] else "left")
    for row in rows:
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)


def free_port() -> int:
    """A loopback port free now, for a server the benchmark starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (let the server drain), then SIGKILL once `timeout` seconds have passed."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_load(out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """`tollgate load --out OUT ARGS` from the checkout; its summary and request rows."""
    proc = subprocess.run(
        [sys.executable, "-m", "tollgate", "load", "--out", str(out), *args],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return read_summary(run_dir), read_requests(run_dir / "requests.parquet")

"""Run Tollgate's own commands (as a release engineer would) and read a server's /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import REPO_ROOT

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def tollgate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def load(out: Path, url: str, *args: str, timeout: float = 300) -> tuple[int, Path | None, dict, str]:
    """`tollgate load --url URL --out OUT ARGS`: (exit code, run folder, summary, stderr)."""
    proc = tollgate("load", "--url", url, "--out", str(out), *args, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    run_dir = Path(lines[-1]) if lines and Path(lines[-1]).is_dir() else None
    if run_dir is None or not (run_dir / "summary.json").exists():
        raise AssertionError(f"tollgate load wrote no run folder ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.returncode, run_dir, json.loads((run_dir / "summary.json").read_text()), proc.stderr


def requests_of(run_dir: Path) -> pd.DataFrame:
    parquet = run_dir / "requests.parquet"
    return pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(run_dir / "requests.csv")


def scrape(url: str) -> Samples:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of a sample over the label sets that carry `match`."""
    return sum(v for (n, labels), v in samples.items() if n == name and match.items() <= dict(labels).items())


def names(samples: Samples) -> set[str]:
    return {n for n, _ in samples}


def summary_brief(summary: dict[str, Any]) -> str:
    return json.dumps({k: summary.get(k) for k in ("status", "requests", "errors", "notes")})

"""Rows move to disk during the run (memory stays flat) and all come back in requests.parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from loadgen.mock_server import start_mock_server
from tests.loadgen.test_load_e2e import load


@pytest.mark.timeout(90)
def test_rows_flushed_mid_run_all_reach_requests_parquet(tmp_path):
    # 5 s spans two flushes of the coordinator (every FLUSH_S = 2 s; not imported: that would load Locust)
    with start_mock_server("--ttft-ms", "2", "--itl-ms", "1") as mock:
        code, run_dir, summary = load(
            tmp_path, *f"--url {mock.url} --users 3 --duration 5s --endpoint completions".split()
        )
    assert code == 0
    frame = pd.read_parquet(run_dir / "requests.parquet")
    assert len(frame) == summary["requests"]["sent"] > 0 and frame["request_id"].is_unique
    assert (
        summary["metrics"]["ttft_ms"]["count"] == summary["requests"]["completed"] == int(frame["ok"].sum())
    )
    assert not (run_dir / "requests.partial.jsonl").exists()

"""Servers shared by the server tests: the session's default one (tests/conftest.py) and a
guarded one with an API key (also on /health and /metrics), a tiny queue, a small body limit
and a capture log."""

from __future__ import annotations

import httpx
import pytest

from tests.support.servers import start_reference_server

API_KEY = "test-key-123"
MAX_WAITING = 2
MAX_NUM_SEQS = 2
MAX_BODY_BYTES = 65536


@pytest.fixture(scope="session")
def capture_path(tmp_path_factory):
    return tmp_path_factory.mktemp("capture") / "capture.jsonl"


@pytest.fixture(scope="session")
def guarded_server(capture_path):
    # The key comes from the environment, so TOLLGATE_API_KEY is covered (--api-key is its flag twin).
    with start_reference_server(
        "--max-waiting", str(MAX_WAITING),
        "--max-num-seqs", str(MAX_NUM_SEQS),
        "--max-body-bytes", str(MAX_BODY_BYTES),
        "--capture", str(capture_path),
        "--protect-metrics",
        env={"TOLLGATE_API_KEY": API_KEY},
    ) as server:  # fmt: skip
        yield server


@pytest.fixture()
def guarded_client(guarded_server):
    with httpx.Client(
        base_url=guarded_server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture()
def client(reference_server):
    with httpx.Client(base_url=reference_server.url, timeout=60) as client:
        yield client

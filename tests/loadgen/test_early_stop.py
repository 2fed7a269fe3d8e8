"""A run whose first requests are all rejected the same way stops early (issue 12 §2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.early_stop import EARLY_STOP_REQUESTS, EarlyStop, describe
from loadgen.timeline import RequestRecord
from tests.loadgen.test_load_e2e import REPO


def rejected(status=400, error="HTTP 400: no chat template", detail="no chat template; pass --chat-template"):
    rec = RequestRecord("r", "synthetic", 0, True)
    rec.status, rec.error, rec.detail = status, error, detail
    return rec


def test_identical_client_errors_give_one_verdict_with_the_servers_message():
    watch = EarlyStop()
    verdicts = [watch.observe(rejected(), "http://h:1", "/v1/chat/completions") for _ in range(20)]
    assert verdicts[: EARLY_STOP_REQUESTS - 1] == [None] * (EARLY_STOP_REQUESTS - 1)
    verdict = verdicts[EARLY_STOP_REQUESTS - 1]
    assert verdict["status"] == 400 and verdict["message"] == "no chat template; pass --chat-template"
    assert verdict["request"] == "POST http://h:1/v1/chat/completions"
    assert [v for v in verdicts if v] == [verdict]  # said once
    text = describe(verdict)
    assert "HTTP 400" in text and "server said: no chat template" in text and "fix: " in text


@pytest.mark.parametrize(
    "other",
    [
        RequestRecord("ok", "synthetic", 0, True),  # a success
        rejected(404, "HTTP 404: not found"),  # a different failure
        rejected(429, "HTTP 429: slow down"),  # load, not a wrong request
    ],
)
def test_a_success_or_another_error_among_the_first_requests_keeps_the_run(other):
    watch = EarlyStop()
    if other.error == "":
        other.status = 200
    assert watch.observe(rejected(), "u", "/p") is None
    assert watch.observe(other, "u", "/p") is None
    assert all(watch.observe(rejected(), "u", "/p") is None for _ in range(20))


@pytest.mark.timeout(150)
@pytest.mark.parametrize("processes", [1, 2])
def test_wrong_model_on_the_reference_server_stops_early_exit_2(reference_server, tmp_path, processes):
    argv = f"--url {reference_server.url} --users 2 --duration 60s --model no-such-model --out {tmp_path}"
    argv += f" --processes {processes}"  # 2: a worker tells the master (tollgate_stop_early)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tollgate",
            "load",
            *argv.split(),
            "--output-tokens",
            "4",
            "--input-tokens",
            "8",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "summary.json").read_text())
    assert proc.returncode == 2 and summary["status"] == "failed", proc.stderr[-2000:]
    verdict = summary["stopped_early"]
    assert verdict["status"] == 400 and "does not exist on this server" in verdict["message"]
    assert summary["requests"]["sent"] < 4 * EARLY_STOP_REQUESTS  # stopped, not 60 s of 400s
    assert "stopped early" in proc.stderr and "'no-such-model' does not exist" in proc.stderr
    assert "fix: " in proc.stderr

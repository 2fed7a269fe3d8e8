"""`tollgate drift watch` end to end: a growing capture log, Prometheus gauges, and the DriftDetected alert
through `tollgate monitor` to a real Slack-compatible receiver (also via the deprecated --slack-webhook);
and the reference server's own capture log as live data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drift.features import features_from_frame, records_to_features
from drift.log_tail import LogTail
from drift.profile import build_profile, save_profile
from drift.synthetic import Mix, capture_log, dataset
from tests.support.servers import free_port, start_reference_server

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def _profile(tmp_path: Path) -> Path:
    rows = capture_log(1500, seed=1)
    feats = records_to_features(enumerate(rows, 1), "synthetic", [])
    return save_profile(build_profile(feats), tmp_path / "profile.json")


def _append(path: Path, rows: list[dict]) -> None:
    with path.open("a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))


def test_log_tail_waits_for_a_line_being_written(tmp_path: Path) -> None:
    log = tmp_path / "capture.jsonl"
    rows = capture_log(3, seed=2)
    _append(log, rows[:2])
    with log.open("a") as fh:
        fh.write(json.dumps(rows[2])[:50])  # the server is mid-write
    tail = LogTail(log)
    tail.poll(time.time())
    assert len(tail.rows) == 2 and tail.skipped == 0
    with log.open("a") as fh:
        fh.write(json.dumps(rows[2])[50:] + "\n{broken\n")
    tail.poll(time.time())
    assert len(tail.rows) == 3 and tail.skipped == 1 and ":4:" in tail.warnings[0]
    log.write_text("")  # rotated
    tail.poll(time.time())
    _append(log, rows[:1])
    tail.poll(time.time())
    assert len(tail.rows) == 4


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=5).text
    return {
        s.name + (f"[{s.labels['feature']}]" if "feature" in s.labels else ""): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


SHIFTED = Mix(topics={"finance": 0.5, "medical": 0.5}, temperatures={1.0: 1.0})


def _tollgate(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tollgate", *args],
        env={**ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextlib.contextmanager
def _slack_receiver() -> Iterator[str]:
    """A real Slack-compatible webhook receiver on loopback; yields its base URL."""
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "monitors.webhook_receiver", "--port", str(port)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        _stop(receiver)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _drift_alerts(receiver: str, deadline: float) -> list[dict]:
    """The DriftDetected messages the receiver accepted on /services/..., waiting until `deadline`."""
    while True:
        messages = httpx.get(f"{receiver}/messages", timeout=5).json()["messages"]
        found = [m for m in messages if "DriftDetected" in json.dumps(m["payload"])]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


@pytest.mark.timeout(90)
def test_watch_gauges_alert_in_slack_through_the_monitor(tmp_path: Path) -> None:
    """The one alerting path: the watch publishes gauges and results; `tollgate monitor` scraping it fires
    its shipped DriftDetected rule into Slack."""
    profile = _profile(tmp_path)
    log = tmp_path / "capture.jsonl"
    _append(log, capture_log(400, SHIFTED, seed=3, spacing_s=0.01))
    watch = monitor = None
    with _slack_receiver() as receiver:
        try:
            watch = _tollgate(
                "drift", "watch", "--profile", str(profile), "--live", str(log), "--interval", "1",
                "--port", "0", "--arl", "100", "--out", str(tmp_path / "out"),
            )  # fmt: skip
            first = watch.stdout.readline()
            assert first.startswith("metrics on http://127.0.0.1:"), first
            url = first.split()[-1]
            monitor = _tollgate(
                "monitor", "--target", url, "--interval", "1s", "--store", str(tmp_path / "monitor.db"),
                env={"TOLLGATE_SLACK_WEBHOOK": f"{receiver}/services/T/B/drift"},
            )  # fmt: skip
            deadline = time.monotonic() + 45
            metrics: dict[str, float] = {}
            while time.monotonic() < deadline and metrics.get("tollgate_drift_detected") != 1.0:
                time.sleep(0.5)
                metrics = _metrics(url)
            assert metrics.get("tollgate_drift_detected") == 1.0
            assert metrics["tollgate_drift_score[temperature]"] > 0.5
            assert "tollgate_drift_score[prompt_sketch]" in metrics
            alerts = _drift_alerts(receiver, deadline)
            assert alerts and alerts[0]["path"].startswith("/services/T/B/drift")
            assert url.removesuffix("/metrics") in json.dumps(
                alerts[0]["payload"]
            )  # the monitor's target label
            assert list((tmp_path / "out").glob("*.json"))
        finally:
            _stop(watch)
            _stop(monitor)


@pytest.mark.timeout(90)
def test_deprecated_slack_flag_still_alerts_through_the_monitor(tmp_path: Path) -> None:
    """`drift watch --slack-webhook` (deprecated) says so, starts the monitor it names, and the alert of its
    one check still reaches Slack before the watch exits."""
    profile = _profile(tmp_path)
    log = tmp_path / "capture.jsonl"
    _append(log, capture_log(400, SHIFTED, seed=3, spacing_s=0.01))
    with _slack_receiver() as receiver:
        done = subprocess.run(
            [
                sys.executable, "-m", "tollgate", "drift", "watch", "--profile", str(profile),
                "--live", str(log), "--per-window", "--max-checks", "1", "--interval", "1", "--port", "0",
                "--out", str(tmp_path / "out"), "--store", str(tmp_path / "notify.db"),
                "--slack-webhook", f"{receiver}/services/T/B/old",
            ],
            env=ENV, capture_output=True, text=True, timeout=75,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "deprecated" in done.stderr and "tollgate monitor --target http://127.0.0.1:" in done.stderr
        alerts = _drift_alerts(receiver, time.monotonic() + 5)
        assert alerts and alerts[0]["path"] == "/services/T/B/old", done.stderr[-3000:]
    assert (tmp_path / "notify.db").exists()  # the monitor's store and outbox, where --store named it


@pytest.mark.timeout(120)
def test_reference_server_capture_log_is_live_data(tmp_path: Path) -> None:
    """The real server's capture lines parse with no skipped line and are checked against a dataset
    profile built by the same extractor."""
    import pandas as pd

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in dataset(500, seed=4)))
    from drift.cli import main

    assert main(["profile", str(train), "-o", str(tmp_path / "p.json")]) == 0
    capture = tmp_path / "capture.jsonl"
    with start_reference_server("--capture", str(capture)) as server:

        def ask(i: int) -> int:
            msgs = [{"role": "user", "content": f"hello number {i}"}]
            body = {"model": "tiny", "max_tokens": 1, "messages": msgs}
            return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:  # the server batches them
            assert list(pool.map(ask, range(20))) == [200] * 20
    from drift.features import load_features

    live = load_features(capture)
    assert len(live) == 20 and live.n_skipped == 0, live.warnings
    assert live.vectors.shape == (20, 64) and not pd.isna(live.table["prompt_tokens"]).any()
    out = tmp_path / "out"
    code = main(["check", "--profile", str(tmp_path / "p.json"), "--live", str(capture), "--out", str(out)])
    result = json.loads(next(out.glob("*.json")).read_text())
    assert code in (0, 1) and result["window"]["n_live"] == 20
    assert {r["feature"]: r["status"] for r in result["features"]}["prompt_words"] == "decided"
    assert not features_from_frame(live.table).table.empty

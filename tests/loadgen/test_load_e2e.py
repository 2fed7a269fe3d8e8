"""End-to-end `tollgate load` runs: real Locust against the mock server and the reference server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from loadgen import cli
from loadgen.mock_server import start_mock_server
from tests.support.filesystems import small_tmpfs
from tests.support.servers import free_port
from tollgate.contracts.run_folder import REQUEST_COLUMNS, validate_summary

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mock():
    with start_mock_server("--ttft-ms", "10", "--itl-ms", "2") as server:
        yield server


@pytest.fixture(scope="module")
def faulty():
    with start_mock_server("--ttft-ms", "5", "--itl-ms", "1", "--fault", "mixed") as server:
        yield server


def load(out: Path, *args: str, timeout: float = 60) -> tuple[int, Path, dict]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tollgate",
            "load",
            "--out",
            str(out),
            "--output-tokens",
            "8",
            "--input-tokens",
            "16",
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return proc.returncode, run_dir, json.loads((run_dir / "summary.json").read_text())


@pytest.mark.timeout(90)
def test_closed_loop_step_shape_run_folder_is_complete(mock, tmp_path):
    code, run_dir, summary = load(
        tmp_path,
        *f"--url {mock.url} --users 2 --shape step --shape-opt steps=2 --duration 2s --name smoke".split(),
    )
    assert code == 0 and run_dir.parent == tmp_path and run_dir.name.startswith("smoke-")
    assert (
        validate_summary(summary) == []
        and summary["status"] == "complete"
        and summary["notes"] == ["shape finished"]
    )
    n = summary["requests"]["completed"]
    assert (
        n > 0 and summary["requests"]["failed"] == 0 and summary["requests"]["output_tokens_estimated"] == 0
    )
    for name in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        assert set(summary["metrics"][name]) >= {"p50", "p90", "p95", "p99", "p999", "mean", "count"}
    assert summary["metrics"]["ttft_ms"]["count"] == n and summary["metrics"]["itl_ms"]["count"] == n * 7
    assert summary["metrics"]["ttft_ms"]["p50"] >= 10.0  # the mock never answers sooner
    assert summary["server"]["models"] == ["mock-model"] and "api_key" not in summary["config"]
    frame = pd.read_parquet(run_dir / "requests.parquet")
    incomplete = summary["requests"]["incomplete"]  # in flight when the shape ended
    assert set(REQUEST_COLUMNS) <= set(frame.columns) and len(frame) == n + incomplete
    assert (frame.loc[~frame["ok"], "error"].str.startswith("incomplete")).all()
    frame = frame[frame["ok"]]
    assert (frame["output_tokens"] == 8).all() and len(frame) == n
    assert all(
        len(c) == 8 and c[0] == pytest.approx(t, abs=1e-3)
        for c, t in zip(frame["chunk_ms"], frame["ttft_ms"], strict=True)
    )
    stats = (run_dir / "locust_stats.csv").read_text()
    assert all(f"{kind},/v1/chat/completions" in stats for kind in ("TTFT", "TPOT", "ITL"))
    assert "plotly" in (run_dir / "report.html").read_text() and (run_dir / "locust.html").stat().st_size > 0


@pytest.mark.timeout(90)
def test_faults_are_counted_with_reasons_not_crashes(faulty, tmp_path):
    code, _, summary = load(tmp_path, *f"--url {faulty.url} --users 2 --requests 12".split())
    assert code == 0 and summary["requests"]["sent"] == 12
    reasons = " | ".join(summary["errors"])
    for expected in ("malformed SSE", "HTTP 500", "server error in stream", "stream truncated"):
        assert expected in reasons
    assert summary["requests"]["completed"] == 4 and summary["requests"]["output_tokens_estimated"] == 2
    assert sum(summary["errors"].values()) == summary["requests"]["failed"] == 8


@pytest.mark.timeout(90)
def test_open_loop_with_two_processes_merges_workers(mock, tmp_path):
    code, run_dir, summary = load(
        tmp_path, *f"--url {mock.url} --rate 40 --requests 24 --processes 2 --endpoint completions".split()
    )
    assert code == 0 and summary["requests"]["completed"] == 24
    assert set(summary["validity"]["processes"]) == {"worker-0", "worker-1"}
    assert summary["metrics"]["ttft_ms"]["count"] == 24  # histograms merged through worker->master reports
    for name in ("ttft_from_intended_ms", "e2e_from_intended_ms", "client_queue_ms"):
        assert summary["metrics"][name]["count"] == 24
    assert summary["throughput"]["offered_rate_per_s"] == 40.0
    frame = pd.read_parquet(run_dir / "requests.parquet")
    assert sorted(frame["worker"].unique()) == [0, 1] and frame["intended_send_s"].notna().all()


@pytest.mark.timeout(90)
def test_refused_connection_is_a_failed_run_with_reason(tmp_path):
    code, _, summary = load(tmp_path, *f"--url http://127.0.0.1:{free_port()} --users 1 --requests 3".split())
    assert code == 1 and summary["status"] == "failed"
    assert summary["errors"] == {"connection refused": 3}


@pytest.mark.timeout(90)
def test_server_killed_mid_run_is_counted_not_fatal(tmp_path):
    with start_mock_server("--ttft-ms", "5", "--itl-ms", "20") as doomed:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollgate", "load", "--url", doomed.url, "--users", "2", "--duration", "2s", "--out", str(tmp_path), "--output-tokens", "50"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 40
        while not httpx.get(doomed.url + "/mock/truth").json()["requests"] and time.monotonic() < deadline:
            time.sleep(0.1)
        doomed.proc.kill()  # mid-stream: every open stream breaks, later requests are refused
        out, _ = proc.communicate(timeout=60)
    summary = json.loads((Path(out.strip().splitlines()[-1]) / "summary.json").read_text())
    assert validate_summary(summary) == [] and summary["status"] in (
        "failed",
        "complete",
    )  # failed: none completed
    assert summary["requests"]["failed"] >= 2 and "connection refused" in summary["errors"]


def _start_long_run(mock, tmp_path: Path) -> subprocess.Popen:
    """A 60 s closed-loop run, returned once Locust has logged a second of traffic."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tollgate",
            "load",
            "--url",
            mock.url,
            "--users",
            "2",
            "--duration",
            "60s",
            "--out",
            str(tmp_path),
            "--output-tokens",
            "8",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 40
    history = None
    while time.monotonic() < deadline:  # wait until Locust has logged a second of traffic
        history = next(tmp_path.glob("*/locust_stats_history.csv"), None)
        if history is not None and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    return proc


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_writes_an_interrupted_run(mock, tmp_path, sig):
    proc = _start_long_run(mock, tmp_path)
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=60)
    summary = json.loads((Path(out.strip().splitlines()[-1]) / "summary.json").read_text())
    assert proc.returncode == 130 and summary["status"] == "interrupted"
    assert summary["requests"]["completed"] > 0 and validate_summary(summary) == []


def _locust_processes(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.timeout(90)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_killed_generator_leaves_no_orphan_locust(mock, tmp_path):
    """`tollgate load` killed with SIGKILL: its Locust gets SIGINT from the kernel, writes an interrupted
    run and exits instead of loading the server as an orphan."""
    proc = _start_long_run(mock, tmp_path)
    assert _locust_processes(str(tmp_path)), "Locust is not running"
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 45
    while _locust_processes(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _locust_processes(str(tmp_path))
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "Locust outlived the killed `tollgate load`"
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["status"] == "interrupted" and validate_summary(summary) == []


@pytest.mark.timeout(150)
def test_headless_run_against_the_reference_server(reference_server, tmp_path):
    code, run_dir, summary = load(
        tmp_path,
        *f"--url {reference_server.url} --users 1 --requests 2 --output-tokens 3 --input-tokens 8 --timeout 60s --ignore-eos".split(),
    )
    assert code == 0 and summary["status"] == "complete" and validate_summary(summary) == []
    assert summary["requests"]["completed"] == 2 and summary["requests"]["failed"] == 0, summary["errors"]
    assert summary["requests"]["output_tokens_estimated"] == 0  # the reference server reports usage
    assert summary["metrics"]["ttft_ms"]["count"] == 2
    for name in ("requests.parquet", "report.html", "locust.html", "locust_stats.csv"):
        assert (run_dir / name).is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--url", "http://x:1", "--users", "1", "--requests", "1", "--input-tokens", "uniform:9"],
            "--input-tokens: 'uniform:9' is not a DIST",
        ),
        (["--url", "http://x:1", "--requests", "1"], "--users N (closed loop) or --rate R"),
        (["--url", "http://x:1", "--users", "1"], "--duration 60s or --requests N"),
        (
            ["--url", "http://x:1", "--rate", "2", "--duration", "5s", "--shape", "ramp"],
            "--shape needs --users",
        ),
        (["--url", "http://x:1", "--users", "1", "--duration", "1fortnight"], "is not a duration"),
        (
            ["--url", "http://x:1", "--users", "1", "--requests", "1", "--dataset", "{bad}"],
            "bad.jsonl:1: not valid JSON",
        ),
        (
            ["--url", "http://x:1", "--users", "1", "--requests", "1", "--tokenizer", "/nonexistent/tok"],
            "--tokenizer /nonexistent/tok: no tokenizer.json there",
        ),
        (
            [
                "--url",
                "http://x:1",
                "--users",
                "1",
                "--requests",
                "1",
                "--scenario",
                "multi-turn",
                "--endpoint",
                "completions",
            ],
            "multi-turn sends chat histories; use --endpoint chat",
        ),
        (
            ["--url", "http://x:1", "--users", "1", "--requests", "1", "--turns", "x"],
            "--turns: 'x' is not a DIST",
        ),
    ],
)
def test_bad_flags_and_datasets_exit_2_with_a_clear_message(argv, message, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    argv = [str(bad) if a == "{bad}" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_unwritable_out_exits_2_before_any_request(tmp_path, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the run folders should go\n")
    argv = ["--url", f"http://127.0.0.1:{free_port()}", "--users", "1", "--requests", "1"]
    assert cli.main([*argv, "--out", str(blocker / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"--out {blocker / 'runs'}: cannot create or write the run folder" in err
    assert "pass --out with a writable folder" in err and "Traceback" not in err


@pytest.mark.timeout(120)
def test_disk_full_during_the_run_fails_clearly_without_a_complete_summary(mock, tmp_path):
    with small_tmpfs(tmp_path / "full", "48k") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "tollgate", "load", "--url", mock.url, "--users", "1", "--requests", "3",
             "--output-tokens", "2", "--out", str(full / "runs")],
            cwd=REPO, capture_output=True, text=True, timeout=100,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out[-3000:]
        assert "could not write the run folder" in out and "no space left on device" in out, out[-3000:]
        for summary in full.rglob("summary.json"):
            assert json.loads(summary.read_text())["status"] != "complete"


@pytest.mark.timeout(90)
def test_requests_cut_off_by_the_end_of_the_run_are_incomplete_not_failed(tmp_path):
    """Every duration-bound closed-loop run ends with requests in flight: they are kept and counted as
    `incomplete`, never silently dropped and never as server errors."""
    with start_mock_server("--ttft-ms", "10", "--itl-ms", "50") as slow:  # 200 tokens take ~10 s
        code, run_dir, summary = load(
            tmp_path, "--url", slow.url, "--users", "2", "--duration", "3s", "--output-tokens", "200"
        )
    requests = summary["requests"]
    assert requests["incomplete"] == 2 and requests["failed"] == 0 and summary["errors"] == {}
    assert requests["sent"] == requests["completed"] + requests["failed"] + requests["incomplete"]
    rows = pd.read_parquet(run_dir / "requests.parquet")
    assert len(rows) == 2 and rows["error"].str.startswith("incomplete").all()

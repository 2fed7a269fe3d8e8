"""`tollgate monitor gpu` as a real exporter process, and the silence commands."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from monitors.cli import main
from monitors.derive import History
from monitors.figures import derive
from monitors.gpu import NvmlReader
from monitors.notify import SLACK_ENV, WEBHOOK_ENV, Alert, Notifier
from monitors.scrape import scrape_all
from tests.support.processes import ROOT, free_port, stop, wait_http
from tollgate.contracts import server_metrics as m


@pytest.mark.timeout(40)
def test_gpu_exporter_serves_host_and_process_metrics(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "tollgate", "monitor", "gpu", "--port", str(port), "--pid", str(os.getpid())]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", proc=proc)
        url = f"http://127.0.0.1:{port}/metrics"
        history = History(60)
        for _ in range(2):
            (scrape,) = asyncio.run(scrape_all([url], timeout_s=5))
            assert scrape.up, scrape.error
            history.add(scrape)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
        stop(proc)
    figures = {name: value for name, _, value in derive(history, 60)}
    assert 0 <= figures["host_cpu_pct"] <= 100 and figures["host_mem_used_bytes"] > 0
    assert figures["process_rss_bytes"] > 0 and "process_cpu_pct" in figures
    samples = scrape.samples
    if NvmlReader().available:
        assert m.DCGM_GPU_UTIL in samples and any(k.startswith("gpu_") for k in figures)
    else:  # this machine: no NVIDIA driver, said once, host metrics only
        assert output.count("no NVIDIA GPU available") == 1
        assert samples[m.GPU_AVAILABLE][()] == 0.0
        assert not any(name.startswith("DCGM_") for name in samples)


def test_gpu_exporter_reports_a_busy_port(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main(["gpu", "--port", str(s.getsockname()[1])]) == 1
    assert "pick another --port" in capsys.readouterr().out


def test_silence_add_list_expire(tmp_path, capsys):
    store = ["--store", str(tmp_path / "m.db")]
    assert main(["silence", *store, "add", "alertname=TargetDown", "target=~.*:8000.*", "--for", "2h",
                 "--comment", "deploy"]) == 0  # fmt: skip
    assert "silence 1 until" in capsys.readouterr().out
    assert main(["silence", *store, "list"]) == 0
    listed = capsys.readouterr().out
    assert "alertname=TargetDown" in listed and "deploy" in listed
    assert main(["silence", *store, "expire", "1"]) == 0
    assert main(["silence", *store, "expire", "1"]) == 1
    assert "no active silence with id 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["silence", *store, "add", "alertname~X"])
    assert exc.value.code == 2
    assert "is not a matcher; write label=value" in capsys.readouterr().err


def test_monitor_flags_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--target", "127.0.0.1:1", "--interval", "5 seconds"])
    assert exc.value.code == 2 and "not a duration" in capsys.readouterr().err
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - name: X\n    kind: up\n    op: '<'\n    threshold: 1\n    for: soon\n")
    assert main(["--target", "127.0.0.1:1", "--rules", str(bad)]) == 2
    assert "r.yaml:6: rules[0].for: 'soon' is not a duration" in capsys.readouterr().err


def test_store_that_cannot_be_created_is_a_clear_exit_2(tmp_path, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be\n")
    store = blocker / "reports" / "monitor.db"
    assert main(["--target", "127.0.0.1:1", "--duration", "1s", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert f"cannot open the store {store}" in err and "pass --store" in err and "Traceback" not in err
    assert main(["silence", "--store", str(store), "list"]) == 2
    assert f"cannot open the store {store}" in capsys.readouterr().err


def test_tollgate_front_door_dispatches_to_monitor():
    out = subprocess.run([sys.executable, "-m", "tollgate", "monitor", "--help"], cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0 and "--slack-webhook" in out.stdout


def test_monitor_warns_about_rules_it_can_never_evaluate_and_stranded_notifications(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - name: R\n    kind: rate\n    metric: x_total\n    window: 1s\n    op: '>'\n"
                     "    threshold: 1\n")  # fmt: skip
    with Notifier(tmp_path / "m.db", slack_webhook="http://127.0.0.1:1/services/T/B/OLD") as earlier:
        earlier.notify(Alert(rule="R", state="firing", labels={"target": "t"}))  # queued, never sent
    cmd = [sys.executable, "-m", "tollgate", "monitor", "--target", "127.0.0.1:1", "--rules", str(rules),
           "--interval", "1s", "--duration", "0s", "--store", str(tmp_path / "m.db")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in (SLACK_ENV, WEBHOOK_ENV)}
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "rule R (" in out.stderr and "under two scrape intervals (2s)" in out.stderr
    assert "1 undelivered notification(s) in" in out.stderr and "webhooks not configured now" in out.stderr

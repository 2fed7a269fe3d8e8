"""Faults: a server killed mid-run, a monitor killed while Slack is down, corrupt capture lines."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.helpers import run_cli, services, tollgate, wait_until
from tollgate.contracts import CAPTURE_SCHEMA_VERSION, prompt_profile, validate_summary
from tollgate.demo_data import DATA_DIR
from tollgate.supervise import free_port

TARGET_DOWN_RULES = """
rules:
  - name: TargetDown
    kind: up
    op: "<"
    threshold: 1
    for: 1s
    severity: critical
    summary: "{{ target }} is down"
"""


def slack_headlines(record: Path) -> list[str]:
    """'[FIRING] Rule: summary' texts the receiver accepted, in arrival order."""
    if not record.exists():
        return []
    return [json.loads(line)["payload"]["text"] for line in record.read_text().splitlines() if line.strip()]


def _rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(TARGET_DOWN_RULES)
    return path


@pytest.mark.timeout(240)
def test_server_killed_mid_run(tmp_path, figures):
    """Injects SIGKILL into the server 2 s into a 6 s `tollgate load` run, with `tollgate monitor`
    scraping it; must hold: the load generator still writes a complete, valid summary.json that
    says the run failed (connection errors counted, not crashed), the monitor's TargetDown alert
    reaches Slack, and after a restart on the same port requests succeed and the alert resolves."""
    with services(tmp_path) as svc:
        _, slack_url, record = svc.receiver()
        port = free_port()
        server, url = svc.server(port=port)
        monitor = svc.sup.start(
            "monitor",
            tollgate(
                "monitor",
                "--target",
                url,
                "--interval",
                "500ms",
                "--rules",
                str(_rules(tmp_path)),
                "--store",
                str(tmp_path / "monitor.db"),
            ),  # fmt: skip
            env={"TOLLGATE_SLACK_WEBHOOK": f"{slack_url}/services/T/B/x", "PYTHONUNBUFFERED": "1"},
        )
        argv = tollgate("load", "--url", url, "--users", "2", "--duration", "6s", "--output-tokens", "4")
        load = subprocess.Popen(
            [*argv, "--name", "killed", "--out", str(tmp_path / "runs")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(2)
            server.proc.send_signal(signal.SIGKILL)
            figures.faults += 1
            out, err = load.communicate(timeout=150)
        finally:
            if load.poll() is None:
                load.kill()
        assert load.returncode in (0, 1), err[-3000:]
        run = Path(out.strip().splitlines()[-1])
        summary = json.loads((run / "summary.json").read_text())
        assert validate_summary(summary) == []
        figures.requests += int(summary["requests"]["completed"]) + int(summary["requests"]["failed"])
        assert summary["status"] == "failed", summary["status"]
        assert summary["requests"]["failed"] > 0 and summary["errors"], summary["errors"]

        fired = wait_until(
            lambda: [h for h in slack_headlines(record) if h.startswith("[FIRING] TargetDown")],
            60,
            "TargetDown",
        )
        assert len(fired) == 1
        assert monitor.alive()

        svc.server(port=port)  # restart on the same port: same target for the monitor
        body = {"model": "tiny", "prompt": "hello", "max_tokens": 2}
        assert httpx.post(f"{url}/v1/completions", json=body, timeout=60).status_code == 200
        figures.requests += 1
        resolved = wait_until(
            lambda: [h for h in slack_headlines(record) if h.startswith("[RESOLVED] TargetDown")],
            60,
            "TargetDown resolved",
        )
        assert len(resolved) == 1
        figures.alerts_lost += 2 - len(fired) - len(resolved)


def _dashboard_page_text(root: Path, page: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Everything a dashboard page sends to the browser, rendered by Streamlit's AppTest on `root`."""
    from streamlit.testing.v1 import AppTest

    from dashboards.settings import DATA_ENV

    monkeypatch.setenv(DATA_ENV, str(root))
    views = Path(__file__).resolve().parents[2] / "dashboards" / "views"
    at = AppTest.from_file(str(views / f"{page}.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    return "\n".join(str(getattr(el, "proto", "")) for el in at._tree) + "".join(
        df.value.to_csv() for df in at.dataframe
    )


def _hold_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _outbox(store: Path) -> list[dict]:
    if not store.exists():
        return []
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT fingerprint, state, status, attempts FROM outbox")]
    except sqlite3.Error:  # the monitor is still creating the database
        return []


@pytest.mark.timeout(180)
def test_monitor_killed_during_delivery_with_slack_down(tmp_path, figures, monkeypatch):
    """Injects three dead targets (three TargetDown alerts) while Slack refuses connections, then
    SIGKILLs the monitor once all three are queued and delivery attempts are failing, brings
    Slack back and restarts the monitor on the same store; must hold: every alert reaches Slack
    exactly once (no loss, no duplicate), in the outbox as delivered. Security: the webhook URL's
    secret appears neither in the monitor's logs, nor in its store, nor on the dashboard's alerts and
    overview pages rendered from that store."""
    store = tmp_path / "monitor.db"
    # Ports bound but not listening: connections are refused, and no other process can take them.
    held = [_hold_port() for _ in range(4)]
    slack_port = held[0].getsockname()[1]  # nothing listens here until "Slack" comes back
    dead = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in held[1:]]
    argv = tollgate("monitor", *(a for t in dead for a in ("--target", t)), "--interval", "500ms")
    argv += ["--rules", str(_rules(tmp_path)), "--store", str(store), "--group-by", "alertname,target"]
    secret = secrets.token_hex(12)  # the part of a Slack webhook URL that must never leak
    env = {"TOLLGATE_SLACK_WEBHOOK": f"http://127.0.0.1:{slack_port}/services/T000/B000/{secret}"}
    with services(tmp_path) as svc:
        first = svc.sup.start("monitor-1", argv, env=env)
        wait_until(
            lambda: (rows := _outbox(store)) and len(rows) >= 3 and any(r["attempts"] >= 1 for r in rows),
            60,
            "three queued notifications, delivery under way and failing",
        )
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        figures.faults += 1 + len(_outbox(store))  # the kill and each refused delivery
        held[0].close()
        _, _, record = svc.receiver(port=slack_port)
        svc.sup.start("monitor-2", argv, env=env)
        wait_until(lambda: len(slack_headlines(record)) >= 3, 90, "three deliveries after the restart")
        time.sleep(3)  # room for a duplicate to show up, were there one
        headlines = slack_headlines(record)
        targets = sorted(t for h in headlines for t in dead if t in h)
        assert len(headlines) == 3 and targets == sorted(dead), headlines
        assert all(h.startswith("[FIRING] TargetDown") for h in headlines)
        rows = _outbox(store)
        assert len(rows) == 3 and all(r["status"] == "delivered" for r in rows), rows
        figures.alerts_lost += 3 - len(set(targets))
        figures.requests += len(headlines)
        leaks = [
            p.name
            for p in [store, *svc.sup.log_dir.glob("monitor-*.log")]
            if secret.encode() in p.read_bytes()
        ]
        assert leaks == [], f"the webhook URL leaked into {leaks}"
        for page in ("alerts", "overview"):  # the dashboard reading this store shows no secret either
            text = _dashboard_page_text(tmp_path, page, monkeypatch)
            assert "TargetDown" in text and secret not in text, page
    for sock in held:
        sock.close()


def _capture_line(i: int, text: str) -> str:
    record = {
        "schema_version": CAPTURE_SCHEMA_VERSION,
        "timestamp": time.time() - 300 + i,  # inside the watcher's default one-hour window
        "request_id": f"r{i}",
        "endpoint": "/v1/chat/completions",
        "model": "tiny",
        "stream": True,
        "prompt_tokens": 20 + i % 7,
        "completion_tokens": 8,
        "max_tokens": 8,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": None,
        "n_messages": 2,
        "finish_reason": "length",
        "queue_s": 0.01,
        "ttft_s": 0.2,
        "e2e_s": 0.5,
        "prompt_profile": prompt_profile(text, "Store support."),
    }
    return json.dumps(record)


CORRUPT = [
    "{not json at all",
    '{"schema_version": 1, "timestamp": 17000',  # truncated mid-record
    "[1, 2, 3]",
    '{"schema_version": 1, "timestamp": "yesterday"}',
    "\x00\x01\x02 binary junk",
]


@pytest.mark.timeout(180)
def test_drift_watcher_skips_corrupt_and_truncated_lines(tmp_path, figures):
    """Injects 5 corrupt capture lines (invalid JSON, a record cut mid-way, a JSON array, wrong
    types, binary junk) among 120 valid ones, plus a final line truncated without its newline, into
    the log `tollgate drift watch` reads; must hold: the watcher runs its check, reports the bad
    lines as skipped, and every one of the 120 valid lines is counted (none lost)."""
    prompts = [json.loads(line) for line in (DATA_DIR / "live_steady.jsonl").read_text().splitlines()]
    good = [_capture_line(i, p["messages"][-1]["content"]) for i, p in enumerate(prompts[:120])]
    lines = list(good)
    for k, junk in enumerate(CORRUPT):
        lines.insert(10 + 20 * k, junk)
    live = tmp_path / "capture.jsonl"
    live.write_text("\n".join(lines) + "\n" + good[0][: len(good[0]) // 2])
    figures.faults += len(CORRUPT) + 1
    profile = tmp_path / "profile.json"
    built = run_cli("drift", "profile", str(DATA_DIR / "training.jsonl"), "-o", str(profile))
    assert built.returncode == 0, built.stderr[-2000:]
    out_dir = tmp_path / "drift"
    watch = run_cli(
        "drift", "watch", "--profile", str(profile), "--live", str(live), "--out", str(out_dir),
        "--interval", "1s", "--max-checks", "1", "--port", "0",
        timeout=150,
    )  # fmt: skip
    assert watch.returncode in (0, 1), watch.stderr[-3000:]
    results = sorted(out_dir.glob("*.json"))
    assert results, f"no drift result written:\n{watch.stdout[-2000:]}\n{watch.stderr[-2000:]}"
    result = json.loads(results[-1].read_text())
    window = result["window"]
    figures.requests += len(good)
    assert window["n_live"] == len(good), window
    assert window["n_skipped_lines"] >= len(CORRUPT), window
    assert result["warnings"], "the skipped lines must be reported"

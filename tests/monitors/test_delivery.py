"""Outbox delivery against the real Slack-compatible receiver: retries, order, restarts, no duplicates."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from monitors.notify import Alert, Backoff, Notifier
from tests.support.processes import ROOT, receiver, wait_until

FAST = Backoff(base_s=0.05, max_s=0.2, min_interval_s=0.02)


def _alerts(n: int) -> list[Alert]:
    return [
        Alert(
            rule=f"Rule{i}",
            state="firing",
            labels={"target": "http://t"},
            value=2.0,
            threshold=1.0,
            active_since=1000.0 + i,
            summary=f"alert number {i}",
        )
        for i in range(n)
    ]


def _order(messages: list[dict]) -> list[str]:
    return [m["payload"]["attachments"][0]["blocks"][0]["text"]["text"] for m in messages]


@pytest.mark.timeout(60)
def test_429_and_500_then_all_arrive_once_in_order(tmp_path):
    with receiver(tmp_path / "rx.jsonl", "--fail-429", "2", "--fail-500", "3", "--retry-after", "0.3") as rx:
        notifier = Notifier(tmp_path / "m.db", slack_webhook=rx.url + "/services/T/B/X", backoff=FAST)
        for alert in _alerts(5):
            assert notifier.notify(alert)
        assert not notifier.notify(_alerts(1)[0]), "same state change must not be queued twice"
        notifier.start()
        wait_until(lambda: len(rx.messages()) >= 5, 30, what="5 messages")
        notifier.close()
        assert _order(rx.messages()) == [f"*alert number {i}*" for i in range(5)]
        rows = notifier.outbox.rows()
        assert [r["status"] for r in rows] == ["delivered"] * 5
        assert rows[0]["attempts"] == 6  # 2 x 429, 3 x 500, then 200
        assert "429, retry after 0.3s" not in (rows[0]["last_error"] or "")


CRASHING_MONITOR = """
import sys, time
from monitors.notify import Backoff, Notifier
from tests.monitors.test_delivery import _alerts
n = Notifier(sys.argv[1], slack_webhook=sys.argv[2], backoff=Backoff(0.05, 0.2, 0.02))
a = _alerts(3)
n.notify(a[0]); n.notify(a[1])
n.start()
print("accepted", flush=True)
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_monitor_killed_and_restarted_while_receiver_down_loses_nothing(tmp_path):
    record = tmp_path / "rx.jsonl"
    with receiver(record) as rx:
        port, url = rx.port, rx.url + "/hook"
    # receiver is down; a monitor process accepts two alerts, retries, and is killed -9
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_MONITOR, str(tmp_path / "m.db"), url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "accepted"
    wait_until(lambda: _statuses(tmp_path)[:1] == ["retrying"], 20, what="a failed attempt")
    proc.kill()
    proc.wait()
    assert _statuses(tmp_path) == ["retrying", "pending"]
    # the restarted monitor re-queues what it recomputes (no-op) and one more; the receiver comes back
    second = Notifier(tmp_path / "m.db", slack_webhook=url, backoff=FAST)
    alerts = _alerts(3)
    assert not second.notify(alerts[1])
    assert second.notify(alerts[2])
    with receiver(record, port=port) as rx:
        second.start()  # takes over once the dead process's lease expires
        wait_until(lambda: len(rx.messages()) >= 3, 40, what="3 messages")
        second.close()
        assert _order(rx.messages()) == [f"*alert number {i}*" for i in range(3)]
    assert _statuses(tmp_path) == ["delivered"] * 3


def _statuses(tmp_path) -> list[str]:
    return [r[0] for r in sqlite3.connect(tmp_path / "m.db").execute("SELECT status FROM outbox ORDER BY id")]


@pytest.mark.timeout(30)
def test_webhook_gets_alertmanager_format_and_urls_stay_secret(tmp_path, caplog):
    caplog.set_level("DEBUG")
    with receiver(tmp_path / "rx.jsonl") as rx:
        secret = rx.url + "/hooks/SECRET-TOKEN"
        n = Notifier(tmp_path / "m.db", webhook_url=secret, backoff=FAST, dashboard_url="http://dash")
        alert = _alerts(1)[0]
        n.notify(alert)
        n.notify(Alert(**{**alert.__dict__, "state": "resolved", "ts": 1100.0}))
        assert n.deliver_pending() == 2
        n.close()
        got = [m["payload"] for m in rx.messages()]
    assert [g["status"] for g in got] == ["firing", "resolved"]
    assert got[0]["version"] == "4" and got[0]["alerts"][0]["labels"]["alertname"] == "Rule0"
    assert got[1]["alerts"][0]["endsAt"].startswith("1970-01-01T00:18:20")
    assert "SECRET-TOKEN" not in caplog.text
    db_dump = "\n".join(str(r) for r in n.outbox.rows())
    assert "SECRET-TOKEN" not in db_dump


@pytest.mark.timeout(30)
def test_rejected_payload_is_marked_failed_and_does_not_block(tmp_path):
    with receiver(tmp_path / "rx.jsonl") as rx:
        n = Notifier(tmp_path / "m.db", slack_webhook=rx.url + "/x", backoff=FAST)
        n.outbox.enqueue(n.receivers[0], "fp", "firing", "bad-1", {"nothing": "here"})
        n.notify(_alerts(1)[0])
        assert n.deliver_pending() == 1
        n.close()
        assert [r["status"] for r in n.outbox.rows()] == ["failed", "delivered"]
        assert "no_text" in n.outbox.rows()[0]["last_error"]
        assert len(rx.messages()) == 1


@pytest.mark.timeout(60)
def test_manual_passes_beside_the_background_loop_send_each_message_once(tmp_path):
    with receiver(tmp_path / "rx.jsonl", "--fail-500", "2") as rx:
        notifier = Notifier(tmp_path / "m.db", slack_webhook=rx.url + "/x", backoff=FAST).start()
        for alert in _alerts(4):
            notifier.notify(alert)
        wait_until(
            lambda: notifier.deliver_pending() is not None and len(rx.messages()) >= 4, 30, what="4 messages"
        )
        notifier.close()
        assert _order(rx.messages()) == [f"*alert number {i}*" for i in range(4)]

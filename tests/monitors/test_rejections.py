"""An overloaded reference server answers most requests 429; the monitor's stored rejected_rate and
error_rate match the fraction of 429s the load generator saw, and the rejection alert fires."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.monitors.helpers import ROOT, stop, wait_until
from tests.support.servers import start_reference_server

WINDOW_S = 60  # longer than the load: the stored ratio after the load covers all of it
RULES = f"""rules:
  - name: HighRejectionRate
    kind: figure
    metric: rejected_rate
    window: {WINDOW_S}s
    op: ">"
    threshold: 0.1
    for: 1s
    severity: warning
    summary: "{{{{ value }}}} of requests refused on {{{{ target }}}}"
  - name: HighErrorRate
    kind: figure
    metric: error_rate
    window: {WINDOW_S}s
    op: ">"
    threshold: 0.05
    for: 1s
    severity: critical
    summary: "{{{{ value }}}} of requests fail on {{{{ target }}}}"
"""
BODY = {"model": "tiny", "prompt": "the quick brown fox", "max_tokens": 8, "ignore_eos": True}


class Overload:
    """`clients` threads posting completions back to back for `seconds`, counting answers by status."""

    def __init__(self, url: str, clients: int, seconds: float) -> None:
        self.url, self.deadline = url, time.monotonic() + seconds
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < self.deadline:
                status = client.post(self.url + "/v1/completions", json=BODY).status_code
                with self.lock:
                    self.statuses[status] += 1
                if status == 429:
                    time.sleep(0.02)  # bounded retry pace: the box is shared

    def join(self) -> Counter[int]:
        for t in self.threads:
            t.join(timeout=120)
        return self.statuses


def _query(db, sql: str, *params):
    try:
        return sqlite3.connect(db).execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


@pytest.mark.timeout(120)
def test_monitor_sees_the_429s_the_load_generator_saw(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    db = tmp_path / "m.db"
    with start_reference_server("--max-num-seqs", "2", "--max-waiting", "2") as server:
        cmd = [sys.executable, "-m", "tollgate", "monitor", "--target", server.url, "--rules",
               str(tmp_path / "rules.yaml"), "--interval", "500ms", "--window", f"{WINDOW_S}s", "--store", str(db)]  # fmt: skip
        monitor = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_until(
                lambda: _query(db, "SELECT 1 FROM series WHERE name='up' LIMIT 1"), 30, what="first scrape"
            )
            statuses = Overload(server.url, clients=12, seconds=6).join()
            load_end = time.time()
            rows = wait_until(
                lambda: _query(db, "SELECT name, value FROM series WHERE ts > ? + 1 AND name IN "
                               "('rejected_rate', 'error_rate') ORDER BY ts", load_end),
                20, what="the monitor storing rates after the load",
            )  # fmt: skip
            fired = wait_until(
                lambda: _query(db, "SELECT DISTINCT rule FROM alerts WHERE state='firing'"), 20, what="alerts"
            )
        finally:
            stop(monitor)
    total = sum(statuses.values())
    seen = statuses[429] / total
    stored = {name: value for name, value in rows}
    assert statuses[429] and statuses[200], statuses  # overloaded, yet serving
    assert abs(stored["rejected_rate"] - seen) <= 0.10, (stored, statuses)
    assert abs(stored["error_rate"] - seen) <= 0.10, (stored, statuses)  # no engine errors here
    assert {"HighRejectionRate", "HighErrorRate"} <= {r for (r,) in fired}

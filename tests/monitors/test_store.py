"""The SQLite store: contract schema, queries, downsampling tiers and retention, read-only readers."""

from __future__ import annotations

import sqlite3

import pytest

from monitors.store import Store, Tier
from tollgate.contracts.monitor_store import MONITOR_STORE_SCHEMA_VERSION

TIERS = (Tier(0, 600), Tier(60, 3600), Tier(600, 86400))


def _fill(store: Store, start: float, end: float, step: float = 5.0) -> None:
    t = start
    while t < end:
        for target in ("a", "b"):
            store.write_samples(t, target, [("up", {}, 1.0), ("gpu_util_pct", {"gpu": "0"}, t % 100)])
        t += step


def test_schema_wal_and_queries(tmp_path):
    store = Store(tmp_path / "m.db", TIERS)
    _fill(store, 1000, 1030)
    assert store.get_meta("schema_version") == str(MONITOR_STORE_SCHEMA_VERSION)
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    rows = store.series("gpu_util_pct", 1000, 1020, target="a", labels={"gpu": "0"}, resolution=0)
    assert [r["ts"] for r in rows] == [1000, 1005, 1010, 1015, 1020] and rows[0]["labels"] == {"gpu": "0"}
    latest = {(r["target"], r["name"]): r["value"] for r in store.latest()}
    assert latest[("b", "gpu_util_pct")] == 1025 % 100 and latest[("a", "up")] == 1.0
    # the dashboard opens the file read-only while the monitor writes
    ro = sqlite3.connect(f"file:{tmp_path / 'm.db'}?mode=ro", uri=True)
    assert ro.execute("SELECT COUNT(*) FROM series").fetchone()[0] == 2 * 2 * 6


def test_downsampling_averages_whole_buckets_and_retention_drops_old_rows(tmp_path):
    store = Store(tmp_path / "m.db", TIERS)
    _fill(store, 0, 1200)  # 20 minutes of 5 s scrapes
    stats = store.compact(now=1200)
    minute = store.series("gpu_util_pct", 0, 1200, target="a", resolution=60)
    assert len(minute) == 20
    assert minute[1]["ts"] == 60 and minute[1]["value"] == pytest.approx(
        sum(t % 100 for t in range(60, 120, 5)) / 12
    )
    ten = store.series("up", 0, 1200, target="b", resolution=600)
    assert [r["ts"] for r in ten] == [0, 600] and all(r["value"] == 1.0 for r in ten)
    raw = store.series("up", 0, 1200, target="a", resolution=0)
    assert raw[0]["ts"] == 600  # raw kept 600 s
    assert stats["deleted"] == 2 * 2 * 120
    # compacting again adds nothing (watermark), and later buckets roll up incrementally
    assert store.compact(now=1200)["downsampled"] == 0
    _fill(store, 1200, 1260)
    assert store.compact(now=1260)["downsampled"] == 2 * 2  # one new minute, 2 targets x 2 series


def test_tier_choice_follows_retention(tmp_path):
    store = Store(tmp_path / "m.db", TIERS)
    assert store.tier_for(start=1000, now=1300) == 0
    assert store.tier_for(start=1000, now=3000) == 60
    assert store.tier_for(start=0, now=90000) == 600


def test_silences_and_alert_history(tmp_path):
    store = Store(tmp_path / "m.db")
    sid = store.add_silence([["alertname", "=", "X"]], 0, 100, "me", "why")
    assert [s["id"] for s in store.silences(now=50, active_only=True)] == [sid]
    assert store.expire_silence(sid, now=60) and not store.expire_silence(sid, now=61)
    assert store.silences(now=70, active_only=True) == []
    row = {"ts": 5.0, "fingerprint": "f", "rule": "X", "state": "firing", "severity": "warning",
           "labels": {"target": "t"}, "value": 2.0, "threshold": 1.0, "active_since": 1.0}  # fmt: skip
    store.record_alert(row)
    assert store.alert_history()[0]["labels"] == {"target": "t"}
    assert store.last_alert_states()["f"]["state"] == "firing"

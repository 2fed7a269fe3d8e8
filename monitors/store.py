"""The monitor store: one SQLite file (WAL) with the contract's tables (tollgate.contracts.monitor_store).

Series are written at the scrape interval as `resolution` 0 (the DDL default, "raw") and rolled up
into coarser tiers by `compact()`: each tier holds the average of the finer tier over its bucket, and
each tier has its own retention, so a week of 5 s scrapes stays about 15 MB per target (bench/monitors.py).

Every public method opens its own short transaction, so the scraper, the notifier's delivery loop and
readers in other processes (the dashboard, `tollgate drift watch`) can share the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollgate.contracts.monitor_store import DDL, MONITOR_STORE_SCHEMA_VERSION


@dataclass(frozen=True)
class Tier:
    resolution: int  # seconds between rows; 0 means "raw, at the scrape interval"
    retention_s: float


# Raw samples for 2 h, 1-minute averages for 2 days, 10-minute for 14 days, hourly for 90 days
# (~120 bytes a row with its index: about 14 MB per target for a week of 5 s scrapes, see bench).
DEFAULT_TIERS = (Tier(0, 2 * 3600), Tier(60, 2 * 86400), Tier(600, 14 * 86400), Tier(3600, 90 * 86400))


ALERT_COLUMNS = (
    *("ts", "fingerprint", "rule", "state", "severity", "labels", "value", "threshold", "active_since"),
    *("summary", "description"),
)


def labels_json(labels: dict[str, str] | None) -> str:
    return json.dumps(labels or {}, sort_keys=True, separators=(",", ":"))


class Store:
    """Thread-safe handle on the monitor database (one connection per thread)."""

    def __init__(self, path: str | Path, tiers: tuple[Tier, ...] = DEFAULT_TIERS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tiers = tiers
        self._local = threading.local()
        self._conn().executescript(DDL)  # executescript manages its own transaction
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(MONITOR_STORE_SCHEMA_VERSION),),
            )

    # -- connection -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE so writers never deadlock."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        finally:
            conn.row_factory = None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- series -----------------------------------------------------------------------------
    def write_samples(
        self, ts: float, target: str, samples: Iterable[tuple[str, dict[str, str] | None, float]]
    ) -> int:
        """Append raw (tier 0) rows: (series name, labels, value). Returns the number written."""
        rows = [(ts, target, name, labels_json(labels), float(value), 0) for name, labels, value in samples]
        self.write_rows(rows)
        return len(rows)

    def write_rows(self, rows: Iterable[tuple[float, str, str, str, float | None, int]]) -> None:
        """Append series rows (ts, target, name, labels JSON, value, resolution) in one transaction:
        the bulk path for imports and sample data (a scrape writes through write_samples)."""
        with self.tx() as db:
            db.executemany(
                "INSERT INTO series (ts, target, name, labels, value, resolution) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def set_target(self, target: str, up: bool, ts: float, error: str | None = None) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO targets (target, up, last_scrape, last_error) VALUES (?, ?, ?, ?)",
                (target, int(up), ts, error),
            )

    def targets(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.query("SELECT * FROM targets ORDER BY target")]

    def series(
        self,
        name: str,
        start: float,
        end: float,
        target: str | None = None,
        labels: dict[str, str] | None = None,
        resolution: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of one series over [start, end], oldest first; the finest tier covering `start` by default."""
        if resolution is None:
            resolution = self.tier_for(start, time.time())
        sql = "SELECT ts, target, labels, value FROM series WHERE name = ? AND resolution = ? AND ts BETWEEN ? AND ?"
        params: list[Any] = [name, resolution, start, end]
        if target is not None:
            sql += " AND target = ?"
            params.append(target)
        if labels is not None:
            sql += " AND labels = ?"
            params.append(labels_json(labels))
        rows = self.query(sql + " ORDER BY ts", params)
        return [{**dict(r), "labels": json.loads(r["labels"])} for r in rows]

    def tier_for(self, start: float, now: float) -> int:
        for tier in self.tiers:
            if now - start <= tier.retention_s:
                return tier.resolution
        return self.tiers[-1].resolution

    def latest(self, target: str | None = None) -> list[dict[str, Any]]:
        """The newest raw value of every (target, name, labels)."""
        sql = (
            "SELECT s.target, s.name, s.labels, s.value, s.ts FROM series s JOIN ("
            " SELECT target, name, labels, MAX(ts) AS ts FROM series WHERE resolution = 0"
            " GROUP BY target, name, labels) m"
            " ON s.target = m.target AND s.name = m.name AND s.labels = m.labels AND s.ts = m.ts"
            " WHERE s.resolution = 0"
        )
        params: list[Any] = []
        if target is not None:
            sql += " AND s.target = ?"
            params.append(target)
        rows = self.query(sql + " ORDER BY s.target, s.name", params)
        return [{**dict(r), "labels": json.loads(r["labels"])} for r in rows]

    # -- retention and downsampling ---------------------------------------------------------
    def compact(self, now: float | None = None) -> dict[str, int]:
        """Roll finished buckets up into each coarser tier, then drop rows past each tier's retention."""
        now = time.time() if now is None else now
        stats = {"downsampled": 0, "deleted": 0}
        with self.tx() as db:
            for finer, coarser in zip(self.tiers, self.tiers[1:], strict=False):
                res = coarser.resolution
                key = f"downsampled_until:{res}"
                row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                first = db.execute(
                    "SELECT MIN(ts) FROM series WHERE resolution = ?", (finer.resolution,)
                ).fetchone()[0]
                start = float(row[0]) if row else (first // res * res if first is not None else now)
                end = now // res * res  # only whole buckets that can no longer change
                if end <= start:
                    continue
                cur = db.execute(
                    "INSERT INTO series (ts, target, name, labels, value, resolution)"
                    " SELECT CAST(ts / ? AS INTEGER) * ?, target, name, labels, AVG(value), ?"
                    " FROM series WHERE resolution = ? AND ts >= ? AND ts < ?"
                    " GROUP BY CAST(ts / ? AS INTEGER), target, name, labels",
                    (res, res, res, finer.resolution, start, end, res),
                )
                stats["downsampled"] += cur.rowcount
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, repr(end)))
            for tier in self.tiers:
                cur = db.execute(
                    "DELETE FROM series WHERE resolution = ? AND ts < ?",
                    (tier.resolution, now - tier.retention_s),
                )
                stats["deleted"] += cur.rowcount
            cur = db.execute("DELETE FROM alerts WHERE ts < ?", (now - self.tiers[-1].retention_s,))
            stats["deleted"] += cur.rowcount
        return stats

    def vacuum(self) -> None:
        self._conn().execute("VACUUM")

    # -- alerts and silences ----------------------------------------------------------------
    def record_alert(self, row: dict[str, Any]) -> None:
        with self.tx() as db:
            self.insert_alert(db, row)

    @staticmethod
    def insert_alert(db: sqlite3.Connection, row: dict[str, Any]) -> None:
        """Insert one alert state change inside the caller's transaction."""
        cols = ALERT_COLUMNS
        values = [labels_json(row[c]) if c == "labels" else row.get(c) for c in cols]
        db.execute(f"INSERT INTO alerts ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)

    def alert_history(
        self, start: float = 0.0, end: float | None = None, rule: str | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM alerts WHERE ts BETWEEN ? AND ?"
        params: list[Any] = [start, time.time() + 1e9 if end is None else end]
        if rule is not None:
            sql += " AND rule = ?"
            params.append(rule)
        rows = self.query(sql + " ORDER BY id", params)
        return [{**dict(r), "labels": json.loads(r["labels"])} for r in rows]

    def last_alert_states(self) -> dict[str, dict[str, Any]]:
        """The newest row per fingerprint: what a restarted monitor resumes from."""
        rows = self.query(
            "SELECT a.* FROM alerts a JOIN (SELECT fingerprint, MAX(id) AS id FROM alerts"
            " GROUP BY fingerprint) m ON a.id = m.id"
        )
        return {r["fingerprint"]: {**dict(r), "labels": json.loads(r["labels"])} for r in rows}

    def add_silence(
        self, matchers: list[list[str]], starts_at: float, ends_at: float, created_by: str, comment: str
    ) -> int:
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES (?, ?, ?, ?, ?)",
                (labels_json(matchers), starts_at, ends_at, created_by, comment),
            )
            return int(cur.lastrowid)

    def silences(self, now: float | None = None, active_only: bool = False) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        sql = "SELECT * FROM silences"
        params: tuple[Any, ...] = ()
        if active_only:
            sql += " WHERE starts_at <= ? AND ends_at > ?"
            params = (now, now)
        rows = self.query(sql + " ORDER BY id", params)
        return [{**dict(r), "matchers": json.loads(r["matchers"])} for r in rows]

    def expire_silence(self, silence_id: int, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self.tx() as db:
            cur = db.execute(
                "UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?", (now, silence_id, now)
            )
            return cur.rowcount == 1

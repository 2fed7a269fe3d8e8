"""The notification outbox: rows in the store's `outbox` table, delivered in id order per receiver.

A row is written once per (receiver, state change) thanks to the UNIQUE dedup_key, so re-queuing the
same alert after a restart is a no-op. Only one process delivers a receiver's rows at a time: it holds a
short lease in `meta` (`outbox_lease:<receiver>`), renewed on every pass, taken over when it expires
or at once when its holder is a dead process on this host.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import Any

from monitors.store import Store

LEASE_S = 15.0
OPEN = ("pending", "retrying")


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner = uuid.uuid4().hex

    def enqueue(
        self,
        receiver: str,
        fingerprint: str,
        state: str,
        dedup_key: str,
        payload: dict,
        db: Any = None,
        now: float | None = None,
    ) -> bool:
        """Queue one notification; False when this dedup_key was queued before (idempotent).
        With `db`, the row is written inside the caller's transaction; `now` (default the clock)
        stamps it."""
        if db is None:
            with self.store.tx() as own:
                return self.enqueue(receiver, fingerprint, state, dedup_key, payload, own, now)
        now = time.time() if now is None else now
        cur = db.execute(
            "INSERT OR IGNORE INTO outbox (created_at, receiver, fingerprint, state, dedup_key, payload,"
            " status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
            (now, receiver, fingerprint, state, dedup_key, json.dumps(payload), now),
        )
        return cur.rowcount == 1

    def acquire(self, receiver: str, now: float | None = None) -> bool:
        """Take or renew the delivery lease for `receiver`; False while another live process holds it."""
        now = time.time() if now is None else now
        key = f"outbox_lease:{receiver}"
        with self.store.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                lease = json.loads(row[0])
                if lease["owner"] != self.owner and lease["until"] > now and _alive(lease):
                    return False
            value = json.dumps(
                {
                    "owner": self.owner,
                    "until": now + LEASE_S,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                }
            )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return True

    def release(self, receiver: str) -> None:
        with self.store.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (f"outbox_lease:{receiver}",)).fetchone()
            if row and json.loads(row[0])["owner"] == self.owner:
                db.execute("DELETE FROM meta WHERE key = ?", (f"outbox_lease:{receiver}",))

    def head(self, receiver: str) -> dict[str, Any] | None:
        """The oldest undelivered row of `receiver` (delivery never skips ahead of it)."""
        rows = self.store.query(
            "SELECT * FROM outbox WHERE receiver = ? AND status IN ('pending', 'retrying') ORDER BY id LIMIT 1",
            (receiver,),
        )
        if not rows:
            return None
        row = dict(rows[0])
        row["payload"] = json.loads(row["payload"])
        return row

    def mark_delivered(self, row_id: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.store.tx() as db:
            db.execute(
                "UPDATE outbox SET status = 'delivered', delivered_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (now, row_id),
            )

    def mark_retry(self, row_id: int, next_attempt_at: float, error: str) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE outbox SET status = 'retrying', attempts = attempts + 1, next_attempt_at = ?,"
                " last_error = ? WHERE id = ?",
                (next_attempt_at, error, row_id),
            )

    def mark_failed(self, row_id: int, error: str) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, row_id),
            )

    def rows(self, receiver: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM outbox WHERE 1 = 1", []
        if receiver is not None:
            sql += " AND receiver = ?"
            params.append(receiver)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return [
            {**dict(r), "payload": json.loads(r["payload"])}
            for r in self.store.query(sql + " ORDER BY id", params)
        ]


def _alive(lease: dict) -> bool:
    """False only when the lease holder is provably gone: a dead pid on this same host."""
    if lease.get("host") != socket.gethostname() or "pid" not in lease:
        return True
    try:
        os.kill(int(lease["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

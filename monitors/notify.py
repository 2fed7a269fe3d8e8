"""Public notification API: `Notifier` queues alerts and delivers them (used by the monitor and by
`tollgate drift watch`). The alert model lives in `monitors.alert`; `Alert` is re-exported here.

    notifier = Notifier("reports/monitor.db", slack_webhook=url)   # or TOLLGATE_SLACK_WEBHOOK in env
    notifier.notify(Alert(rule="DriftDetected", state="firing", labels={...}, ...))
    notifier.start()        # background delivery; or call notifier.deliver_pending() yourself

Delivery guarantee. `notify` writes the rendered message to the outbox in one transaction, keyed by
a dedup_key per (receiver, alert fingerprint, state, episode, repeat), so calling it twice, or again after a
restart, queues nothing new. Delivery goes strictly in id order per receiver (a message being retried
holds back the ones behind it), and a row is marked delivered in its own transaction right after the
2xx answer. The one at-least-once edge: if the process dies after the receiver answered 2xx and before
that commit (a window of one SQLite commit, microseconds), the message is sent again on restart.
Webhook payloads carry `groupKey`/fingerprint so a receiver can drop that duplicate; Slack cannot.

Webhook URLs are secrets: they are never logged or stored; the outbox names a receiver by a hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from monitors import slack, webhook
from monitors.alert import Alert, fingerprint
from monitors.outbox import Outbox
from monitors.store import Store
from tollgate.contracts.alert_receivers import SLACK_ENV, WEBHOOK_ENV

log = logging.getLogger("tollgate.notify")
logging.getLogger("httpx").setLevel(logging.WARNING)  # httpx logs full URLs at INFO


__all__ = ["SLACK_ENV", "WEBHOOK_ENV", "Alert", "Backoff", "Notifier", "fingerprint", "receiver_id"]


def receiver_id(kind: str, url: str) -> str:
    """Name of a receiver in the outbox: its kind and a hash of its URL, never the URL itself."""
    return f"{kind}:{hashlib.sha256(url.encode()).hexdigest()[:12]}"


@dataclass
class Backoff:
    base_s: float = 0.5
    max_s: float = 60.0
    min_interval_s: float = slack.MIN_INTERVAL_S  # between two messages to one webhook

    def delay(self, attempts: int) -> float:
        """Exponential backoff with equal jitter for the attempt number `attempts` (1-based)."""
        d = min(self.max_s, self.base_s * 2 ** max(0, attempts - 1))
        return d / 2 + random.uniform(0, d / 2)


class Notifier:
    def __init__(
        self,
        store_path: str | Path,
        slack_webhook: str | None = None,
        webhook_url: str | None = None,
        dashboard_url: str | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.store = Store(store_path)
        self.outbox = Outbox(self.store)
        self.dashboard_url = dashboard_url
        self.backoff = backoff or Backoff()
        self._urls: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        for kind, url in (
            ("slack", slack_webhook or os.environ.get(SLACK_ENV)),
            ("webhook", webhook_url or os.environ.get(WEBHOOK_ENV)),
        ):
            if url:
                rid = receiver_id(kind, url)
                self._urls[rid], self._kinds[rid] = url, kind
        self._client = httpx.Client(timeout=timeout_s)
        self._last_sent: dict[str, float] = {}
        self._deliver_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def receivers(self) -> list[str]:
        return list(self._urls)

    # -- accepting ----------------------------------------------------------------------------
    def notify(self, alert: Alert) -> bool:
        """Queue `alert` for every configured receiver; False when it was already queued."""
        return self.notify_group([alert])

    def notify_group(self, alerts: list[Alert]) -> bool:
        """Queue one message for alerts that changed state together (same rule/group)."""
        return self.notify_groups([alerts])

    def notify_groups(self, groups: list[list[Alert]], also: Callable[[Any], None] | None = None) -> bool:
        """Queue one message per group for every receiver, all in one transaction, together with
        `also(db)` (the monitor records the alert state changes there): all of it or none survives a crash."""
        groups = [g for g in groups if g]
        queued = False
        with self.store.tx() as db:
            for alerts in groups:
                key = "|".join(sorted(a.dedup_key for a in alerts))
                group_key = fingerprint({"group": key})
                state = "firing" if any(a.state == "firing" for a in alerts) else "resolved"
                fp = alerts[0].fingerprint if len(alerts) == 1 else group_key
                for rid, kind in self._kinds.items():
                    if kind == "slack":
                        payload = slack.render(alerts, self.dashboard_url)
                    else:
                        payload = webhook.render(alerts, self.dashboard_url, group_key=group_key)
                    queued |= self.outbox.enqueue(rid, fp, state, f"{rid}:{key}", payload, db)
            if also is not None:
                also(db)
        if groups and not self._kinds:
            log.warning(
                "alert %s %s: no Slack or webhook receiver configured", groups[0][0].rule, groups[0][0].state
            )
        self._wake.set()
        return queued

    # -- delivering ---------------------------------------------------------------------------
    def deliver_pending(self, now_fn=time.time) -> int:
        """One pass over every receiver's queue; returns how many messages were delivered.
        Safe to call while the background loop runs (one pass at a time per process)."""
        with self._deliver_lock:
            return self._deliver_pass(now_fn)

    def _deliver_pass(self, now_fn) -> int:
        delivered = 0
        for rid in self._urls:
            if not self.outbox.acquire(rid):
                continue
            while not self._stop.is_set():
                row = self.outbox.head(rid)
                if row is None or row["next_attempt_at"] > now_fn():
                    break
                wait = self._last_sent.get(rid, 0.0) + self.backoff.min_interval_s - now_fn()
                if wait > 0:
                    time.sleep(wait)
                outcome = self._send(rid, row)
                if outcome == "retry":
                    break
                delivered += outcome == "delivered"
                if not self.outbox.acquire(rid):  # lease lost (we stalled): the new holder goes on
                    break
        return delivered

    def _send(self, rid: str, row: dict) -> str:
        """POST one row: 'delivered', 'failed' (rejected for good, e.g. 404) or 'retry'."""
        url = self._urls[rid]
        self._last_sent[rid] = time.time()
        try:
            resp = self._client.post(url, json=row["payload"])
        except httpx.HTTPError as exc:
            return self._retry(rid, row, f"{type(exc).__name__}: {self._redact(str(exc))}")
        if 200 <= resp.status_code < 300:
            self.outbox.mark_delivered(row["id"])
            log.info("delivered %s notification #%d to %s", row["state"], row["id"], rid)
            return "delivered"
        if resp.status_code == 429:
            retry_after = _retry_after(resp.headers.get("retry-after"))
            delay = retry_after if retry_after is not None else self.backoff.delay(row["attempts"] + 1)
            log.warning("notification #%d to %s rate limited (429); retry in %.1fs", row["id"], rid, delay)
            self.outbox.mark_retry(row["id"], time.time() + delay, f"429, retry after {delay:.1f}s")
            return "retry"
        if resp.status_code >= 500 or resp.status_code in (408, 425):
            return self._retry(rid, row, f"HTTP {resp.status_code}")
        error = f"HTTP {resp.status_code}: {self._redact(resp.text[:200])}"
        log.error("notification #%d to %s rejected (%s); not retried", row["id"], rid, error)
        self.outbox.mark_failed(row["id"], error)
        return "failed"

    def _retry(self, rid: str, row: dict, error: str) -> str:
        delay = self.backoff.delay(row["attempts"] + 1)
        log.warning("notification #%d to %s failed (%s); retry in %.1fs", row["id"], rid, error, delay)
        self.outbox.mark_retry(row["id"], time.time() + delay, error)
        return "retry"

    def _redact(self, text: str) -> str:
        for rid, url in self._urls.items():
            text = text.replace(url, f"<{rid}>")
        return text

    def next_due(self) -> float | None:
        heads = [self.outbox.head(rid) for rid in self._urls]
        due = [h["next_attempt_at"] for h in heads if h is not None]
        return min(due) if due else None

    # -- background loop ----------------------------------------------------------------------
    def start(self) -> Notifier:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="tollgate-notify", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_pending()
                due = self.next_due()
            except Exception:  # keep delivering: the row stays in the outbox
                log.exception("delivery pass failed")
                due = time.time() + 1.0
            timeout = 5.0 if due is None else min(5.0, max(0.05, due - time.time()))
            self._wake.wait(timeout)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        for rid in self._urls:
            self.outbox.release(rid)

    def close(self) -> None:
        self.stop()
        self._client.close()
        self.store.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

"""Alert states like Prometheus: inactive -> pending -> firing -> resolved, one instance per label set.

Each evaluation turns rule values into instances keyed by the fingerprint of their labels (alertname,
target, `by` groups, rule labels). A breach starts `pending`; after `for` it is `firing` and notified;
when the breach ends a firing alert is `resolved` and notified, a pending one silently goes back to
inactive. Transitions of one evaluation are grouped (by `group_by` labels and state) into one message;
firing alerts are re-sent every `repeat_interval_s`; silenced alerts change state but are not sent.

State changes are written to the `alerts` table in the same transaction that queues their messages, so
a monitor killed at any point restarts with both or neither, resumes its firing alerts from the table
(reminder count included) and holds them until its fresh history can evaluate the rules again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from monitors.alert import Alert, fingerprint
from monitors.derive import History
from monitors.notify import Notifier
from monitors.rule import Rule
from monitors.scrape import Scrape
from monitors.store import Store


@dataclass
class Instance:
    rule: Rule
    labels: dict[str, str]
    state: str  # pending | firing
    active_since: float
    value: float
    notified_at: float | None = None
    repeats: int = 0

    def alert(self, state: str, now: float, repeat: int = 0) -> Alert:
        r = self.rule
        return Alert(
            rule=r.name, state=state, labels=self.labels, value=self.value, threshold=r.threshold,
            comparison=r.op, active_since=self.active_since, severity=r.severity,
            summary=r.render(r.summary, self.value, self.labels),
            description=r.render(r.description, self.value, self.labels),
            runbook_url=r.runbook_url, ts=now, repeat=repeat,
        )  # fmt: skip


def silenced(labels: dict[str, str], silences: list[dict[str, Any]]) -> bool:
    """True when every matcher ([name, "=" | "=~" | "!=", value]) of some active silence matches."""
    for s in silences:
        ok = True
        for name, op, value in s["matchers"]:
            have = labels.get(name, "")
            hit = re.fullmatch(value, have) is not None if op == "=~" else have == value
            ok &= hit if op in ("=", "=~") else not hit
        if ok and s["matchers"]:
            return True
    return False


class Alerting:
    def __init__(
        self,
        rules: list[Rule],
        store: Store,
        notifier: Notifier | None = None,
        repeat_interval_s: float = 4 * 3600,
        group_by: tuple[str, ...] = ("alertname",),
    ) -> None:
        self.rules = {r.name: r for r in rules}
        self.store = store
        self.notifier = notifier
        self.repeat_interval_s = repeat_interval_s
        self.group_by = group_by
        self.active: dict[str, Instance] = {}
        self._restore()

    def _restore(self) -> None:
        """Resume firing alerts of a previous run (pending ones restart their `for`), with when they were
        last sent and how many reminders went out, so the next reminder gets a new dedup_key."""
        for fp, row in self.store.last_alert_states().items():
            rule = self.rules.get(row["rule"])
            if rule is None or row["state"] != "firing":
                continue
            inst = Instance(rule, row["labels"], "firing", row["active_since"], row["value"] or 0.0)
            episode = inst.alert("firing", row["ts"]).dedup_key.rsplit(":", 1)[0] + ":"
            sent = self.store.query(
                "SELECT created_at, dedup_key FROM outbox WHERE dedup_key LIKE ?", (f"%{episode}%",)
            )
            if sent:
                inst.notified_at = max(r["created_at"] for r in sent)
                pattern = re.compile(re.escape(episode) + r"(\d+)")
                inst.repeats = max(int(m.group(1)) for r in sent for m in pattern.finditer(r["dedup_key"]))
            self.active[fp] = inst

    def evaluate(
        self, histories: dict[str, History], last: dict[str, Scrape | None], now: float | None = None
    ):
        """One evaluation over every target; returns the alerts sent (firing, resolved, repeats)."""
        now = time.time() if now is None else now
        seen: set[str] = set()
        held: set[tuple[str, str]] = set()  # (rule, target) not computable yet: keep their alerts as they are
        changes: list[tuple[str, Instance]] = []
        for target, history in histories.items():
            for rule in self.rules.values():
                if not rule.ready(history, last.get(target)):
                    held.add((rule.name, target))
                    continue
                for group, value in rule.evaluate(history, last.get(target)).items():
                    if not rule.breached(value):
                        continue
                    labels = {**rule.labels, "target": target, **dict(group)}
                    fp = fingerprint({"alertname": rule.name, **labels})
                    seen.add(fp)
                    inst = self.active.get(fp)
                    if inst is None:
                        inst = self.active[fp] = Instance(rule, labels, "pending", now, value)
                        changes.append(("pending", inst))
                    inst.value = value
                    if (
                        inst.state == "pending" and now - inst.active_since >= rule.for_s - 1e-6
                    ):  # float slack
                        inst.state = "firing"
                        changes.append(("firing", inst))
        for fp in [fp for fp in self.active if fp not in seen]:
            if (self.active[fp].rule.name, self.active[fp].labels.get("target")) in held:
                continue
            inst = self.active.pop(fp)
            if inst.state == "firing":
                changes.append(("resolved", inst))
        return self._notify(changes, now)

    def _notify(self, changes: list[tuple[str, Instance]], now: float) -> list[Alert]:
        silences = self.store.silences(now, active_only=True)
        groups: dict[tuple, list[Alert]] = {}
        for state, inst in changes:
            if state == "pending":
                continue
            quiet = silenced(
                {"alertname": inst.rule.name, "severity": inst.rule.severity, **inst.labels}, silences
            )
            if state == "resolved" and inst.notified_at is None:
                continue  # never announced (silenced), so nothing to resolve
            if not quiet or state == "resolved":
                inst.notified_at = now
                self._group(groups, inst.alert(state, now))
        for inst in self.active.values():  # repeats, and firing alerts whose silence ended
            if inst.state != "firing" or any(i is inst for _, i in changes):
                continue
            labels = {"alertname": inst.rule.name, "severity": inst.rule.severity, **inst.labels}
            if silenced(labels, silences):
                continue
            if inst.notified_at is None:
                inst.notified_at = now
                self._group(groups, inst.alert("firing", now))
            elif now - inst.notified_at >= self.repeat_interval_s:
                inst.repeats += 1
                inst.notified_at = now
                self._group(groups, inst.alert("firing", now, repeat=inst.repeats))
        sent = [a for alerts in groups.values() for a in alerts]
        rows = [self._row(state, inst, now) for state, inst in changes]
        if self.notifier is not None and self.notifier.store.path.resolve() == self.store.path.resolve():
            # messages and state changes commit together: a crash keeps both or neither
            self.notifier.notify_groups(
                list(groups.values()), also=lambda db: [Store.insert_alert(db, r) for r in rows]
            )
        else:
            if self.notifier is not None:
                self.notifier.notify_groups(list(groups.values()))
            for row in rows:  # after queuing: a crash in between re-queues, deduplicated
                self.store.record_alert(row)
        return sent

    def _group(self, groups: dict[tuple, list[Alert]], alert: Alert) -> None:
        labels = {"alertname": alert.rule, **alert.labels}
        key = (alert.state, alert.repeat > 0, *(labels.get(g, "") for g in self.group_by))
        groups.setdefault(key, []).append(alert)

    @staticmethod
    def _row(state: str, inst: Instance, now: float) -> dict[str, Any]:
        r = inst.rule
        return {
            "ts": now, "fingerprint": fingerprint({"alertname": r.name, **inst.labels}), "rule": r.name,
            "state": state, "severity": r.severity, "labels": inst.labels, "value": inst.value,
            "threshold": r.threshold, "active_since": inst.active_since,
            "summary": r.render(r.summary, inst.value, inst.labels),
            "description": r.render(r.description, inst.value, inst.labels),
        }  # fmt: skip

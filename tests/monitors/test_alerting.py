"""Alert state machine on synthetic scrapes with an explicit clock: pending, for, firing, resolved,
repeat, silences, grouping and a restart that resumes without re-sending."""

from __future__ import annotations

import time

from monitors.alerting import Alerting
from monitors.derive import History
from monitors.notify import Notifier
from monitors.rules import parse_rules
from monitors.scrape import Scrape

RULES = parse_rules(
    {
        "rules": [
            {"name": "Slow", "kind": "quantile", "metric": "ttft", "q": 0.95, "window": "10s", "op": ">",
             "threshold": 1.0, "for": "20s", "summary": "p95 {{ value }}s on {{ target }}"},
            {"name": "Down", "kind": "up", "op": "<", "threshold": 1, "for": "0s", "severity": "critical"},
        ]
    }
)  # fmt: skip
LES = ("0.5", "1", "2", "+Inf")


class Feed:
    """Cumulative TTFT buckets per target; each step adds observations that are fast or slow."""

    def __init__(self, targets: list[str]) -> None:
        self.counts = {t: [0.0] * len(LES) for t in targets}
        self.histories = {t: History(60) for t in targets}
        self.last: dict[str, Scrape | None] = dict.fromkeys(targets)

    def step(self, now: float, slow: set[str], down: frozenset = frozenset()) -> None:
        for t, counts in self.counts.items():
            idx = 2 if t in slow else 0  # 10 observations in (1, 2] or in (0, 0.5]
            for i in range(idx, len(LES)):
                counts[i] += 10
            samples = {"ttft_bucket": {(("le", le),): c for le, c in zip(LES, counts, strict=True)}}
            s = Scrape(t, now, t not in down, 0.01, samples if t not in down else {})
            self.histories[t].add(s)
            self.last[t] = s


def _run(alerting: Alerting, feed: Feed, start: float, end: float, slow: set[str], down=frozenset()):
    sent = []
    for now in range(int(start), int(end), 5):
        feed.step(float(now), slow, down)
        sent += alerting.evaluate(feed.histories, feed.last, now=float(now))
    return sent


def test_pending_for_firing_resolved_sends_exactly_two(tmp_path):
    from monitors.store import Store

    store = Store(tmp_path / "m.db")
    alerting, feed = Alerting(RULES, store), Feed(["a"])
    assert _run(alerting, feed, 0, 30, slow=set()) == []
    # a short breach (10 s < for) stays pending and goes back to inactive without a message
    assert _run(alerting, feed, 30, 45, slow={"a"}) == []
    assert _run(alerting, feed, 45, 75, slow=set()) == []
    sent = _run(alerting, feed, 75, 140, slow={"a"})
    assert [(a.rule, a.state) for a in sent] == [("Slow", "firing")]
    assert sent[0].labels == {"target": "a"} and sent[0].summary.startswith("p95 1.9")
    sent = _run(alerting, feed, 140, 200, slow=set())
    assert [(a.rule, a.state) for a in sent] == [("Slow", "resolved")]
    states = [r["state"] for r in store.alert_history()]
    assert states == ["pending", "pending", "firing", "resolved"]
    history = store.alert_history()
    assert history[2]["ts"] - history[1]["active_since"] >= 20  # fired only after `for`


def test_repeat_interval_and_silences(tmp_path):
    from monitors.store import Store

    store = Store(tmp_path / "m.db")
    alerting, feed = Alerting(RULES, store, repeat_interval_s=60), Feed(["a", "b"])
    sid = store.add_silence([["target", "=", "b"]], 0, 100, "test", "maintenance")
    sent = _run(alerting, feed, 0, 95, slow={"a", "b"})
    firing = [(a.labels["target"], a.repeat) for a in sent]
    assert firing == [("a", 0), ("a", 1)]  # b silenced; a repeated once after 60 s
    store.expire_silence(sid, now=100)
    sent = _run(alerting, feed, 100, 110, slow={"a", "b"})
    assert [(a.labels["target"], a.repeat) for a in sent] == [("b", 0)]  # announced once the silence ends


def test_restart_resumes_firing_without_resending(tmp_path):
    from monitors.store import Store

    url = "http://127.0.0.1:9/never"  # nothing is delivered here; we only look at the outbox
    notifier = Notifier(tmp_path / "m.db", slack_webhook=url)
    alerting, feed = Alerting(RULES, notifier.store, notifier), Feed(["a", "b"])
    sent = _run(alerting, feed, 0, 60, slow={"a", "b"})
    assert [a.state for a in sent] == ["firing", "firing"]
    assert len(notifier.outbox.rows()) == 1, "two targets firing together are one grouped message"
    assert len(notifier.outbox.rows()[0]["payload"]["attachments"]) == 2
    # restart: a new Alerting on the same store and empty in-memory history; the breach continues, then ends
    again = Alerting(RULES, Store(tmp_path / "m.db"), notifier)
    feed.histories = {t: History(60) for t in feed.histories}  # one scrape is too few for a quantile: held
    assert _run(again, feed, 60, 90, slow={"a", "b"}) == []
    sent = _run(again, feed, 90, 120, slow=set())
    assert sorted((a.labels["target"], a.state) for a in sent) == [("a", "resolved"), ("b", "resolved")]
    assert [r["state"] for r in notifier.outbox.rows()] == ["firing", "resolved"]
    notifier.close()


def test_target_down_fires_up_rule(tmp_path):
    from monitors.store import Store

    alerting, feed = Alerting(RULES, Store(tmp_path / "m.db")), Feed(["a"])
    assert _run(alerting, feed, 0, 20, slow=set()) == []
    sent = _run(alerting, feed, 20, 30, slow=set(), down=frozenset({"a"}))
    assert [(a.rule, a.state, a.severity) for a in sent] == [("Down", "firing", "critical")]
    sent = _run(alerting, feed, 30, 40, slow=set())
    assert [(a.rule, a.state) for a in sent] == [("Down", "resolved")]


def test_reminders_continue_numbering_after_restart(tmp_path):
    from monitors.store import Store

    base = int(time.time())  # the outbox stamps rows with wall time: keep the synthetic clock near it
    notifier = Notifier(tmp_path / "m.db", slack_webhook="http://127.0.0.1:9/never")
    feed = Feed(["a"])
    first = Alerting(RULES, notifier.store, notifier, repeat_interval_s=60)
    assert [a.repeat for a in _run(first, feed, base, base + 95, slow={"a"})] == [0, 1]
    again = Alerting(RULES, Store(tmp_path / "m.db"), notifier, repeat_interval_s=60)
    assert [a.repeat for a in _run(again, feed, base + 95, base + 100, slow={"a"})] == [2]
    assert [r["dedup_key"].rsplit(":", 1)[1] for r in notifier.outbox.rows()] == ["0", "1", "2"]
    notifier.close()

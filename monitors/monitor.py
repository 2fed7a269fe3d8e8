"""The embedded monitor: every interval, scrape all targets, store derived series, evaluate rules.

One process, one SQLite file. Ticks are scheduled on a fixed grid (start + n * interval) so a slow
scrape delays one tick instead of drifting all later ones; a tick that overruns the next slot skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import httpx

from monitors.alerting import Alerting
from monitors.derive import History
from monitors.figures import derive, scrape_rows
from monitors.notify import Notifier
from monitors.rule import Rule
from monitors.scrape import Scrape, scrape_all
from monitors.store import Store

log = logging.getLogger("tollgate.monitor")


@dataclass
class MonitorConfig:
    targets: list[str]
    interval_s: float = 5.0
    window_s: float = 60.0  # rate and quantile window of the stored series
    scrape_timeout_s: float | None = None  # default: the interval, at most 10 s
    compact_every_s: float = 300.0
    repeat_interval_s: float = 4 * 3600
    group_by: tuple[str, ...] = ("alertname",)
    concurrency: int = 16


class Monitor:
    def __init__(
        self, config: MonitorConfig, store: Store, rules: list[Rule], notifier: Notifier | None
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        keep = max([config.window_s, *(r.window_s for r in rules)]) + 2 * config.interval_s
        self.histories = {t: History(keep) for t in config.targets}
        self.last: dict[str, Scrape | None] = dict.fromkeys(config.targets)
        self.alerting = Alerting(rules, store, notifier, config.repeat_interval_s, config.group_by)
        self._last_compact = time.time()
        self._was_up: dict[str, bool] = {}
        self.ticks = 0

    async def tick(self, client: httpx.AsyncClient, now: float | None = None) -> list[Scrape]:
        """Scrape, store, evaluate. `now` is the tick's slot on the schedule: rules see exact multiples
        of the interval, so `for: 2s` at a 500 ms interval fires on the 4th tick after the breach."""
        now = time.time() if now is None else now
        cfg = self.config
        timeout = cfg.scrape_timeout_s or min(10.0, max(0.5, cfg.interval_s))
        scrapes = await scrape_all(cfg.targets, timeout, cfg.concurrency, client)
        for s in scrapes:
            self.histories[s.target].add(s)
            self.last[s.target] = s
            rows = scrape_rows(s) + (derive(self.histories[s.target], cfg.window_s) if s.up else [])
            self.store.write_samples(s.ts, s.target, rows)
            self.store.set_target(s.target, s.up, s.ts, s.error)
            if self._was_up.get(s.target) != s.up:
                log.warning(
                    "target %s is %s%s",
                    s.target,
                    "up" if s.up else "DOWN",
                    f" ({s.error})" if s.error else "",
                )
                self._was_up[s.target] = s.up
        self.alerting.evaluate(self.histories, self.last, now=now)
        if time.time() - self._last_compact >= cfg.compact_every_s:
            self.store.compact()
            self._last_compact = time.time()
        self.ticks += 1
        return scrapes

    async def run(self, stop: asyncio.Event, duration_s: float | None = None) -> None:
        interval = self.config.interval_s
        start, wall = time.monotonic(), time.time()
        n = 0
        async with httpx.AsyncClient(follow_redirects=True) as client:
            while not stop.is_set():
                await self.tick(client, now=wall + n * interval)
                if duration_s is not None and time.monotonic() - start >= duration_s:
                    break
                n = max(n + 1, int((time.monotonic() - start) / interval) + 1)
                delay = start + n * interval - time.monotonic()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))

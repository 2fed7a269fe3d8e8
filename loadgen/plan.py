"""What this generator process sends next, and when (one instance per Locust process).

Closed loop: each free user takes the next request index at once. Open loop: users take the next
slot of this worker's share of the global arrival schedule and wait for its intended time; when
every user is busy the slot is taken late and the lateness is the client queue delay.
`--requests N` is split across worker processes; the process calls `on_done` once its share has
been sent and answered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from loadgen.arrivals import ArrivalSchedule
from loadgen.config import RunConfig
from loadgen.conversations import load_conversations
from loadgen.workloads import Workload, load_dataset, parse_dist, parse_scenario


def build_workload(config: RunConfig) -> Workload:
    return Workload(
        input_tokens=parse_dist(config.input_tokens, "--input-tokens"),
        output_tokens=parse_dist(config.output_tokens, "--output-tokens"),
        scenarios=parse_scenario(config.scenario),
        seed=config.seed,
        dataset=load_dataset(config.dataset) if config.dataset else [],
        prefix_count=config.prefix_count,
        prefix_tokens=config.prefix_tokens,
        context_tokens=config.context_tokens,
        output_fixed_by_flag=config.output_tokens_from_flag,
        words=(config.tokens or {}).get("words") or [],
        turns=parse_dist(config.turns, "--turns"),
        conversations=load_conversations(config.dataset)
        if config.dataset and "multi-turn" in config.scenario
        else [],
    )


class ProcessPlan:
    def __init__(
        self, config: RunConfig, worker_index: int, worker_count: int, on_done: Callable[[], None]
    ) -> None:
        self.config = config
        self.worker_index, self.worker_count = worker_index, worker_count
        self.workload = build_workload(config)
        self.open_loop = config.rate is not None
        total = config.requests
        self.quota = None if total is None else total // worker_count + (worker_index < total % worker_count)
        self.schedule = (
            ArrivalSchedule(
                config.rate,
                config.arrival,
                config.burstiness,
                config.seed,
                worker_index,
                worker_count,
                limit=total,
                duration_s=config.duration_s,
            )
            if self.open_loop
            else None
        )
        self.origin = math.nan  # perf_counter time of the schedule's zero
        self.issued = 0
        self.conversations = 0
        self.finished = 0
        self.exhausted = False
        self._on_done = on_done
        self._done_reported = False

    def next_slot(self) -> tuple[int, float] | None:
        """(global request index, intended perf time or NaN), or None when this process is done."""
        if self.exhausted:
            return None
        if self.quota is not None and self.issued >= self.quota:
            self._exhaust()
            return None
        if self.schedule is None:
            index = self.issued * self.worker_count + self.worker_index
        else:
            slot = self.schedule.next()
            if slot is None:
                self._exhaust()
                return None
            if self.origin != self.origin:
                # optional config `start_at` (unix time) is the schedule's zero, so generators that
                # started apart (`tollgate ab`) send request i of the same schedule at the same moment
                wait = max(0.0, (self.config.start_at or 0.0) - time.time())
                self.origin = time.perf_counter() + wait
            index, offset = slot
        self.issued += 1
        return index, (self.origin + offset if self.schedule is not None else math.nan)

    def next_conversation(self) -> int:
        """Global index of this process's next conversation (multi-turn): k * processes + worker, so
        the run's conversations are the same set for a seed however the users interleave."""
        index = self.conversations * self.worker_count + self.worker_index
        self.conversations += 1
        return index

    def halt(self) -> None:
        """Issue nothing more: the run is stopping early. Unlike a spent quota this is not "done", so no
        done report races the stop verdict to the master."""
        self.exhausted = True
        self._done_reported = True

    def request_finished(self) -> None:
        self.finished += 1
        self._check_done()

    def _exhaust(self) -> None:
        self.exhausted = True
        self._check_done()

    def _check_done(self) -> None:
        if self.exhausted and self.finished >= self.issued and not self._done_reported:
            self._done_reported = True
            self._on_done()

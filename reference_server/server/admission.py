"""Admission control: a bounded waiting queue answered with 429 + Retry-After when full.

The engine runs at most `max_running` sequences at once; every other admitted request waits
in its queue. The server admits at most `max_running + max_waiting` requests in flight, so the
engine never holds more than `max_waiting` waiting requests while its batch is full (more only
while the KV cache, not the slot count, limits the batch; the total stays bounded). A refused
request costs nothing: it never reaches the engine. The count is the server's own, not a read
of the engine's queue: requests just handed over are not yet in the engine's figures.

Why 429 and not 503 (vLLM has no queue bound; its 503 means the server is unhealthy or shutting
down): a full queue is back-pressure from a healthy server. 429 + Retry-After tells clients and
load generators to back off and retry the same server, keeps the rejection distinct from real
outages in dashboards and SLO gates, and leaves 503 to mean "starting or draining".
"""

from __future__ import annotations

import math
import threading


class Admission:
    def __init__(self, max_running: int, max_waiting: int) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.capacity = max_running + max_waiting
        self.in_flight = 0
        self._lock = threading.Lock()
        self._avg_e2e_s = 1.0

    def try_admit(self) -> bool:
        """Take a slot if the queue has room; never waits."""
        with self._lock:
            if self.in_flight >= self.capacity:
                return False
            self.in_flight += 1
            return True

    def release(self, e2e_s: float | None = None) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            if e2e_s is not None:
                self._avg_e2e_s = 0.9 * self._avg_e2e_s + 0.1 * e2e_s

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait: about one average request latency, at least 1."""
        return max(1, min(60, math.ceil(self._avg_e2e_s)))

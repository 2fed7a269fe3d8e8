"""Open-loop arrival schedule: Poisson or gamma inter-arrival gaps at a total rate.

One global sequence of arrival times is drawn from the seed; worker w of W takes the arrivals
whose index i satisfies i % W == w. Every worker process draws the same sequence, so the union
over workers is exactly the requested process at the requested total rate, for any number of
Locust workers, with no coordination at run time.

Gamma gaps use vLLM's `--burstiness` convention: shape = burstiness, mean = 1 / rate. Burstiness 1
is Poisson; below 1 arrivals bunch up, above 1 they are more regular.

Times are seconds relative to the schedule's start; the user adds its perf_counter origin.
A request sent later than its slot (every user busy) reports the lag as client queue delay.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BATCH = 4096


def arrival_gaps(rate: float, kind: str, burstiness: float, seed: int) -> Iterator[float]:
    """Endless global inter-arrival gaps in seconds."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    rng = np.random.default_rng([seed, 0xA11])
    shape = 1.0 if kind == "poisson" else burstiness
    if shape <= 0:
        raise ValueError("burstiness must be positive")
    while True:
        yield from rng.gamma(shape, 1.0 / (rate * shape), size=BATCH).tolist()


class ArrivalSchedule:
    """This worker's share of the global arrivals: (global index, offset seconds) in order."""

    def __init__(
        self,
        rate: float,
        kind: str = "poisson",
        burstiness: float = 1.0,
        seed: int = 0,
        worker_index: int = 0,
        worker_count: int = 1,
        limit: int | None = None,
        duration_s: float | None = None,
    ) -> None:
        if not 0 <= worker_index < worker_count:
            raise ValueError(f"worker index {worker_index} outside 0..{worker_count - 1}")
        self._gaps = arrival_gaps(rate, kind, burstiness, seed)
        self._worker, self._workers = worker_index, worker_count
        self._limit, self._duration = limit, duration_s
        self._index, self._time = -1, 0.0

    def next(self) -> tuple[int, float] | None:
        """The next arrival of this worker, or None when the run's requests or time are used up."""
        while True:
            self._index += 1
            self._time += next(self._gaps)
            if self._limit is not None and self._index >= self._limit:
                return None
            if self._duration is not None and self._time > self._duration:
                return None
            if self._index % self._workers == self._worker:
                return self._index, self._time

    def __iter__(self) -> Iterator[tuple[int, float]]:
        while (item := self.next()) is not None:
            yield item

"""Where the Live and Overview pages read series: the monitor store, or Prometheus (`--prometheus`).

Both give the same frames (dashboards/data/store.py's shapes), so the pages do not care which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from dashboards.data import prometheus, store
from dashboards.settings import data_dir, prometheus_url, window_s


@dataclass(frozen=True)
class Series:
    where: str  # the store's path, or Prometheus' base URL
    remote: bool

    @property
    def label(self) -> str:
        return f"Prometheus at {self.where}" if self.remote else f"monitor store {self.where}"

    def targets(self) -> pd.DataFrame:
        return prometheus.targets(self.where) if self.remote else store.targets(self.where)

    def data_end(self) -> float | None:
        return prometheus.data_end(self.where) if self.remote else store.data_end(self.where)

    def series(
        self,
        names: tuple[str, ...],
        targets: tuple[str, ...],
        start: float,
        end: float,
        max_points: int | None,
    ) -> pd.DataFrame:
        if self.remote:  # steps aligned (end rounded up to one) so refreshes within a step hit the cache
            span = end - start
            step = prometheus.step_for(span, max_points)
            end = math.ceil(end / step) * step
            return prometheus.series(self.where, names, targets, end - span, end, max_points, window_s())
        return store.series(self.where, names, targets, start, end, max_points)

    def latest(self, names: tuple[str, ...], targets: tuple[str, ...]) -> pd.DataFrame:
        if self.remote:
            return prometheus.latest(self.where, names, targets, window_s())
        return store.latest(self.where, names, targets)


def remote() -> Series | None:
    """Prometheus when the dashboard was started with --prometheus."""
    url = prometheus_url()
    return Series(url, True) if url else None


def local() -> Series:
    return Series(str(data_dir() / "monitor.db"), False)

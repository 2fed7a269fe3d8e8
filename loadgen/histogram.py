"""Log-linear latency histogram: <=1% relative error, exact count/sum/min/max, mergeable.

Each power of two is split into SUB_BUCKETS linear buckets (HdrHistogram's layout). A value v
falls in [lo, lo * (1 + 1/SUB_BUCKETS)); reporting the bucket midpoint is off by at most
1 / (2 * SUB_BUCKETS) = 0.78% of v. Buckets are a sparse dict, so merging is adding counts and a
histogram travels between Locust workers and the master as two short lists.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

SUB_BUCKETS = 64
QUANTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def bucket_index(value: float) -> int:
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, mantissa in [0.5, 1)
    return exponent * SUB_BUCKETS + int((2.0 * mantissa - 1.0) * SUB_BUCKETS)


def bucket_midpoint(index: int) -> float:
    exponent, sub = divmod(index, SUB_BUCKETS)
    return math.ldexp(1.0 + (sub + 0.5) / SUB_BUCKETS, exponent - 1)


class Histogram:
    """Counts of non-negative values (milliseconds by convention). Zeros are counted exactly."""

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, value: float) -> None:
        if value != value:  # NaN: nothing measured
            return
        value = max(value, 0.0)
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if value == 0.0:
            self.zeros += 1
        else:
            index = bucket_index(value)
            self.buckets[index] = self.buckets.get(index, 0) + 1

    def record_many(self, values: Iterable[float]) -> None:
        """Record each value; a request's ITL list (one value per chunk) is binned in one numpy pass,
        ~4x faster than value by value at 256 values, with the same buckets as `bucket_index`."""
        array = np.asarray(values if isinstance(values, list | np.ndarray) else list(values), dtype=float)
        array = np.maximum(array[~np.isnan(array)], 0.0)
        if not array.size:
            return
        self.count += int(array.size)
        self.total += float(array.sum())
        self.min = min(self.min, float(array.min()))
        self.max = max(self.max, float(array.max()))
        positive = array[array > 0.0]
        self.zeros += int(array.size - positive.size)
        mantissa, exponent = np.frexp(positive)
        indexes = exponent * SUB_BUCKETS + ((2.0 * mantissa - 1.0) * SUB_BUCKETS).astype(np.int64)
        buckets = self.buckets
        for index, n in Counter(indexes.tolist()).items():
            buckets[index] = buckets.get(index, 0) + n

    def merge(self, other: Histogram) -> Histogram:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (q in 0..100); NaN when empty."""
        if self.count == 0:
            return math.nan
        rank = max(1, math.ceil(q / 100.0 * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(max(bucket_midpoint(index), self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def summary(self) -> dict[str, float | int | None]:
        """The contract's latency block: p50 p90 p95 p99 p999 mean count (None when empty)."""
        block: dict[str, float | int | None] = {
            key: _finite(self.percentile(q)) for key, q in QUANTILES.items()
        }
        block["mean"] = _finite(self.mean)
        block["count"] = self.count
        block["min"] = _finite(self.min)
        block["max"] = _finite(self.max)
        return block

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": list(self.buckets),
            "counts": list(self.buckets.values()),
            "zeros": self.zeros,
            "count": self.count,
            "total": self.total,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        hist = cls()
        hist.buckets = {int(i): int(n) for i, n in zip(data["index"], data["counts"], strict=True)}
        hist.zeros = int(data["zeros"])
        hist.count = int(data["count"])
        hist.total = float(data["total"])
        hist.min = math.inf if data["min"] is None else float(data["min"])
        hist.max = -math.inf if data["max"] is None else float(data["max"])
        return hist


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None

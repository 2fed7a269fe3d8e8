"""Mergeable per-feature sketches: the reference side of every drift test.

A profile never keeps the training data. Per feature it keeps:

- `NumericSketch`: count, missing count, mean/M2 (Chan's parallel update, so std merges exactly), min, max,
  and the distribution as a piecewise-linear CDF. While the feature has at most `MAX_EXACT` distinct values
  the CDF is exact (value counts, stored as steps); beyond that it is a quantile sketch of `QUANTILES`
  equal-mass cuts (finer in the extreme tails) plus the TAIL smallest and largest values exactly; its CDF
  error is at most 1/QUANTILES anywhere and zero beyond the TAIL-th value from either end.
- `CategoricalSketch`: counts of the `MAX_CATEGORIES` most frequent categories, the rest pooled in `other`,
  and the number of singletons (Good-Turing's estimate of the probability of an unseen category).
The bounded row sample for the tests that need raw points is `drift.reservoir.Reservoir`.
All of them merge, so shards of a training set can be profiled separately and combined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_EXACT = 1024
QUANTILES = 2048
TAIL = 64  # extreme values kept exactly at each end (binned statistics are sensitive to the emptiest bins)
MAX_CATEGORIES = 1000
# Cut levels of the quantile sketch: equal mass, plus geometric levels inside the two extreme cells so
# long tails (prompt lengths are log-normal-ish) keep their shape instead of being spread linearly.
_TAIL = (1.0 / QUANTILES) * 2.0 ** -np.arange(1, 21)
LEVELS = np.unique(np.concatenate([np.linspace(0.0, 1.0, QUANTILES + 1), _TAIL, 1.0 - _TAIL]))
OTHER = "__other__"
OOV = "__oov__"


@dataclass
class NumericSketch:
    n: int = 0
    n_missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("nan")
    max: float = float("nan")
    values: np.ndarray | None = None  # exact mode: distinct values
    counts: np.ndarray | None = None  # exact mode: their counts
    quantiles: np.ndarray | None = None  # quantile mode: the values at LEVELS
    low: np.ndarray | None = None  # quantile mode: the TAIL smallest values, sorted
    high: np.ndarray | None = None  # quantile mode: the TAIL largest values, sorted

    @classmethod
    def from_values(cls, data: np.ndarray) -> NumericSketch:
        data = np.asarray(data, dtype=float)
        finite = data[~np.isnan(data)]
        sk = cls(n=int(finite.size), n_missing=int(data.size - finite.size))
        if finite.size == 0:
            return sk
        sk.mean = float(finite.mean())
        sk.m2 = float(((finite - sk.mean) ** 2).sum())
        sk.min, sk.max = float(finite.min()), float(finite.max())
        values, counts = np.unique(finite, return_counts=True)
        if values.size <= MAX_EXACT:
            sk.values, sk.counts = values, counts.astype(np.int64)
        else:
            sk.quantiles = np.quantile(finite, LEVELS)
            part = np.partition(finite, (TAIL, finite.size - TAIL - 1))
            sk.low, sk.high = np.sort(part[:TAIL]), np.sort(part[-TAIL:])
        return sk

    @property
    def exact(self) -> bool:
        return self.values is not None

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as numpy and Evidently compute it."""
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")

    @property
    def n_distinct(self) -> int:
        """Distinct values; for a quantile sketch only known to exceed MAX_EXACT."""
        return int(self.values.size) if self.exact else MAX_EXACT + 1

    def cdf_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The CDF as points (x, F) joined by straight lines; a repeated x is a jump (an atom)."""
        if self.n == 0:
            return np.empty(0), np.empty(0)
        if self.exact:
            cum = np.cumsum(self.counts) / self.n
            xs = np.repeat(self.values, 2)
            fs = np.empty(xs.size)
            fs[0::2] = np.concatenate([[0.0], cum[:-1]])
            fs[1::2] = cum
            return xs, fs
        n, k_lo, k_hi = self.n, self.low.size, self.high.size
        levels = LEVELS
        mid = (levels > k_lo / n) & (levels < 1.0 - k_hi / n)
        steps_lo = np.arange(k_lo + 1) / n
        steps_hi = 1.0 - np.arange(k_hi, -1, -1) / n
        xs = np.concatenate([np.repeat(self.low, 2), self.quantiles[mid], np.repeat(self.high, 2)])
        fs = np.concatenate([np.repeat(steps_lo, 2)[1:-1], LEVELS[mid], np.repeat(steps_hi, 2)[1:-1]])
        return xs, fs

    def cdf(self, t: np.ndarray, side: str = "right") -> np.ndarray:
        """F(t) (side="right") or its left limit F(t-) (side="left") at points t."""
        xs, fs = self.cdf_points()
        return eval_cdf(xs, fs, np.asarray(t, dtype=float), side)

    def merge(self, other: NumericSketch) -> NumericSketch:
        if other.n == 0 or self.n == 0:
            base = self if other.n == 0 else other
            out = NumericSketch(**{k: getattr(base, k) for k in base.__dataclass_fields__})
            out.n_missing = self.n_missing + other.n_missing
            return out
        n = self.n + other.n
        delta = other.mean - self.mean
        out = NumericSketch(
            n=n,
            n_missing=self.n_missing + other.n_missing,
            mean=self.mean + delta * other.n / n,
            m2=self.m2 + other.m2 + delta * delta * self.n * other.n / n,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )
        if self.exact and other.exact:
            values, inverse = np.unique(np.concatenate([self.values, other.values]), return_inverse=True)
            if values.size <= MAX_EXACT:
                counts = np.zeros(values.size, dtype=np.int64)
                np.add.at(counts, inverse, np.concatenate([self.counts, other.counts]))
                out.values, out.counts = values, counts
                return out
        # Mixture CDF on the union of both grids (left and right limits keep atoms), then re-cut.
        grid = np.union1d(self.cdf_points()[0], other.cdf_points()[0])
        w1, w2 = self.n / n, other.n / n
        left = w1 * self.cdf(grid, "left") + w2 * other.cdf(grid, "left")
        right = w1 * self.cdf(grid, "right") + w2 * other.cdf(grid, "right")
        xs = np.repeat(grid, 2)
        fs = np.empty(xs.size)
        fs[0::2], fs[1::2] = left, right
        out.quantiles = _inverse_cdf(xs, fs, LEVELS)
        out.low = np.sort(np.concatenate([self._tail(True), other._tail(True)]))[:TAIL]
        out.high = np.sort(np.concatenate([self._tail(False), other._tail(False)]))[-TAIL:]
        return out

    def _tail(self, low: bool) -> np.ndarray:
        if self.exact:
            values = np.repeat(self.values, np.minimum(self.counts, TAIL))
            return values[:TAIL] if low else values[-TAIL:]
        return self.low if low else self.high

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "numeric",
            "n": self.n,
            "n_missing": self.n_missing,
            "mean": self.mean,
            "m2": self.m2,
            "min": None if self.n == 0 else self.min,
            "max": None if self.n == 0 else self.max,
        }
        if self.exact:
            d["values"], d["counts"] = self.values.tolist(), self.counts.tolist()
        elif self.quantiles is not None:
            d["quantiles"] = self.quantiles.tolist()
            d["low"], d["high"] = self.low.tolist(), self.high.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSketch:
        sk = cls(n=int(d["n"]), n_missing=int(d["n_missing"]), mean=float(d["mean"]), m2=float(d["m2"]))
        if sk.n:
            sk.min, sk.max = float(d["min"]), float(d["max"])
        if "values" in d:
            sk.values = np.asarray(d["values"], dtype=float)
            sk.counts = np.asarray(d["counts"], dtype=np.int64)
        elif "quantiles" in d:
            sk.quantiles = np.asarray(d["quantiles"], dtype=float)
            sk.low, sk.high = np.asarray(d["low"], dtype=float), np.asarray(d["high"], dtype=float)
        return sk


def eval_cdf(
    xs: np.ndarray,
    fs: np.ndarray,
    t: np.ndarray,
    side: str,
    idx: np.ndarray | None = None,
    t_sorted: bool = False,
) -> np.ndarray:
    """F(t) (side="right") or F(t-) (side="left") of the piecewise-linear CDF through (xs, fs).

    `idx`, when given, is np.searchsorted(xs, t, side) computed by the caller (e.g. in one pass for sorted t);
    `t_sorted` lets the points outside the CDF's range be found by bisection instead of a full pass.
    """
    if xs.size == 0:
        return np.zeros_like(t)
    if idx is None:
        idx = np.searchsorted(xs, t, side=side)
    i = np.clip(idx, 1, xs.size - 1) - 1
    span = np.diff(xs)
    slope = np.divide(np.diff(fs), span, out=np.zeros_like(span), where=span > 0)
    out = t - xs[i]
    out *= slope[i]
    out += fs[i]
    if t_sorted:
        out[: np.searchsorted(idx, 1)] = 0.0
        out[np.searchsorted(idx, xs.size) :] = 1.0
    else:
        out[idx == 0] = 0.0
        out[idx >= xs.size] = 1.0  # beyond (or, right limit, at) the last point
    return out


def _inverse_cdf(xs: np.ndarray, fs: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Smallest x with F(x) >= u for each level u, for a piecewise-linear CDF."""
    idx = np.clip(np.searchsorted(fs, levels, side="left"), 1, fs.size - 1)
    f0, f1, x0, x1 = fs[idx - 1], fs[idx], xs[idx - 1], xs[idx]
    span = f1 - f0
    frac = np.divide(levels - f0, span, out=np.ones_like(span), where=span > 0)
    return np.where(levels <= fs[0], xs[0], x0 + np.clip(frac, 0.0, 1.0) * (x1 - x0))


@dataclass
class CategoricalSketch:
    n: int = 0
    n_missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    other: int = 0  # rows in categories beyond MAX_CATEGORIES
    tail_singletons: int = 0  # singletons pooled in `other` (approximate once shards are merged)

    @classmethod
    def from_values(cls, data: Any) -> CategoricalSketch:
        import pandas as pd

        series = pd.Series(data, dtype=object)
        missing = series.isna()
        vc = series[~missing].astype(str).value_counts()
        sk = cls(n=int((~missing).sum()), n_missing=int(missing.sum()))
        sk.counts = {str(k): int(v) for k, v in vc.items()}
        sk._truncate()
        return sk

    def _truncate(self) -> None:
        if len(self.counts) > MAX_CATEGORIES:
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.other += sum(v for _, v in ranked[MAX_CATEGORIES:])
            self.tail_singletons += sum(1 for _, v in ranked[MAX_CATEGORIES:] if v == 1)
            self.counts = dict(ranked[:MAX_CATEGORIES])

    @property
    def singletons(self) -> int:
        """Categories seen exactly once."""
        return sum(1 for v in self.counts.values() if v == 1) + self.tail_singletons

    @property
    def unseen_rate(self) -> float:
        """Good-Turing estimate of the probability that a new row has a category never seen."""
        return self.singletons / self.n if self.n else 1.0

    def merge(self, other: CategoricalSketch) -> CategoricalSketch:
        counts = dict(self.counts)
        for k, v in other.counts.items():
            counts[k] = counts.get(k, 0) + v
        out = CategoricalSketch(
            n=self.n + other.n,
            n_missing=self.n_missing + other.n_missing,
            counts=counts,
            other=self.other + other.other,
            tail_singletons=self.tail_singletons + other.tail_singletons,
        )
        out._truncate()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "categorical",
            "n": self.n,
            "n_missing": self.n_missing,
            "counts": self.counts,
            "other": self.other,
            "tail_singletons": self.tail_singletons,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalSketch:
        return cls(
            n=int(d["n"]),
            n_missing=int(d["n_missing"]),
            counts={str(k): int(v) for k, v in d["counts"].items()},
            other=int(d["other"]),
            tail_singletons=int(d["tail_singletons"]),
        )

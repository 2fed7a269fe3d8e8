"""A bounded uniform sample of whole reference rows (scalar features and the prompt vectors).

Tests that need raw points (Cramer-von Mises, Anderson-Darling, MMD) and Evidently's report use it. It merges
(a uniform sample of the union), so shards profiled separately combine like the sketches do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Reservoir:
    """Uniform sample of at most `capacity` rows (Vitter's algorithm R, vectorised per batch)."""

    capacity: int
    n_seen: int = 0
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # scalar features (object for categorical)
    vectors: np.ndarray | None = None  # prompt sketch vectors, shape (rows, dim)

    @property
    def size(self) -> int:
        if self.columns:
            return len(next(iter(self.columns.values())))
        return 0 if self.vectors is None else int(self.vectors.shape[0])

    @property
    def complete(self) -> bool:
        """True when the sample is the whole data set (nothing was ever dropped)."""
        return self.n_seen <= self.capacity

    def add(
        self, columns: dict[str, np.ndarray], vectors: np.ndarray | None, rng: np.random.Generator
    ) -> None:
        other = Reservoir(self.capacity, 0, dict(columns), vectors)
        rows = other.n_seen = other.size
        if rows == 0:
            return
        if rows > self.capacity:
            keep = np.sort(rng.choice(rows, self.capacity, replace=False))
            other = Reservoir(self.capacity, rows, _take(columns, keep), _take_vec(vectors, keep))
        merged = self.merge(other, rng)
        self.n_seen, self.columns, self.vectors = merged.n_seen, merged.columns, merged.vectors

    def merge(self, other: Reservoir, rng: np.random.Generator) -> Reservoir:
        """A uniform sample of the union: split the capacity hypergeometrically by the sizes seen."""
        if other.n_seen == 0:
            return self
        if self.n_seen == 0:
            return Reservoir(self.capacity, other.n_seen, other.columns, other.vectors)
        total = self.n_seen + other.n_seen
        k = min(self.capacity, self.size + other.size)
        if total <= self.capacity:
            k_self = self.size
        else:
            k_self = int(rng.hypergeometric(self.n_seen, other.n_seen, k))
            k_self = min(max(k_self, k - other.size), self.size)
        i_self = np.sort(rng.choice(self.size, k_self, replace=False))
        i_other = np.sort(rng.choice(other.size, k - k_self, replace=False))
        cols = {
            name: np.concatenate([self.columns[name][i_self], other.columns[name][i_other]])
            for name in self.columns
            if name in other.columns
        }
        vectors = None
        if self.vectors is not None and other.vectors is not None:
            vectors = np.concatenate([self.vectors[i_self], other.vectors[i_other]])
        return Reservoir(self.capacity, total, cols, vectors)

    def to_dict(self) -> dict[str, Any]:
        def plain(arr: np.ndarray) -> list[Any]:
            if arr.dtype == object:
                return [None if v is None or v != v else v for v in arr.tolist()]
            return [None if np.isnan(v) else float(v) for v in arr.tolist()]

        return {
            "capacity": self.capacity,
            "n_seen": self.n_seen,
            "columns": {k: plain(v) for k, v in self.columns.items()},
            "vectors": None if self.vectors is None else np.round(self.vectors, 4).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], categorical: set[str]) -> Reservoir:
        cols = {
            k: np.asarray(v, dtype=object)
            if k in categorical
            else np.asarray([np.nan if x is None else x for x in v], dtype=float)
            for k, v in d["columns"].items()
        }
        vectors = None if d.get("vectors") is None else np.asarray(d["vectors"], dtype=float)
        return cls(int(d["capacity"]), int(d["n_seen"]), cols, vectors)


def _take(columns: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[idx] for k, v in columns.items()}


def _take_vec(vectors: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if vectors is None else vectors[idx]

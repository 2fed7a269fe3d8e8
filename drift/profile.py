"""Reference profiles: build once from the training distribution, save, load, merge.

profile.json holds, per feature, a mergeable sketch (drift.sketches) and one bounded reservoir sample of
rows. Checks read only this file, never the training data, and its size depends on the number of features
and the reservoir capacity, not on the size of the training set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drift.features import SKETCH_FEATURE, Features
from drift.reservoir import Reservoir
from drift.sketches import LEVELS, CategoricalSketch, NumericSketch
from tollgate.contracts.files import write_json_atomic

PROFILE_SCHEMA_VERSION = 1
RESERVOIR_CAPACITY = 10_000
REBUILD_HINT = "rebuild it with `tollgate drift profile DATA -o profile.json`"

Sketch = NumericSketch | CategoricalSketch


class ProfileError(ValueError):
    """A profile file that cannot be used (missing, corrupt, other schema)."""


@dataclass
class Profile:
    features: dict[str, Sketch]
    reservoir: Reservoir
    n_rows: int
    sketch_dim: int | None = None
    sketch_mean: np.ndarray | None = None
    source: str = ""
    created_at: float = field(default_factory=time.time)
    path: str | None = None
    vector_name: str = SKETCH_FEATURE  # or EMBEDDING_FEATURE for a profile built with --embeddings

    def kinds(self) -> dict[str, str]:
        out = {
            name: "numeric" if isinstance(sk, NumericSketch) else "categorical"
            for name, sk in self.features.items()
        }
        if self.sketch_dim:
            out[self.vector_name] = "sketch"
        return out

    def merge(self, other: Profile, seed: int = 0) -> Profile:
        """Profile of the union of both data sets (shards profiled separately)."""
        if self.kinds() != other.kinds():
            raise ProfileError(
                f"cannot merge profiles with different features: {self.kinds()} vs {other.kinds()}"
            )
        n = self.n_rows + other.n_rows
        mean = None
        if self.sketch_mean is not None and other.sketch_mean is not None:
            mean = (self.sketch_mean * self.n_rows + other.sketch_mean * other.n_rows) / max(n, 1)
        return Profile(
            {name: sk.merge(other.features[name]) for name, sk in self.features.items()},  # type: ignore[arg-type]
            self.reservoir.merge(other.reservoir, np.random.default_rng(seed)),
            n,
            self.sketch_dim,
            mean,
            f"{self.source} + {other.source}",
            vector_name=self.vector_name,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PROFILE_SCHEMA_VERSION,
            "created_at": self.created_at,
            "source": self.source,
            "n_rows": self.n_rows,
            "features": {name: sk.to_dict() for name, sk in self.features.items()},
            "sketch": None
            if self.sketch_dim is None
            else {
                "name": self.vector_name,
                "dim": self.sketch_dim,
                "mean": np.round(self.sketch_mean, 6).tolist(),
            },
            "reservoir": self.reservoir.to_dict(),
        }


def build_profile(
    features: Features | Iterable[Features],
    reservoir_capacity: int = RESERVOIR_CAPACITY,
    seed: int = 0,
    source: str = "",
) -> Profile:
    """Profile of one Features table, or of an iterable of chunks (merged as they come: bounded memory)."""
    chunks = [features] if isinstance(features, Features) else features
    rng = np.random.default_rng(seed)
    profile: Profile | None = None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        part = _profile_chunk(chunk, reservoir_capacity, rng, source)
        profile = part if profile is None else profile.merge(part, seed=int(rng.integers(1 << 31)))
        profile.source = source
    if profile is None:
        raise ProfileError(
            f"{source or 'input'}: no usable rows to profile (empty, or every line was skipped)"
        )
    return profile


def _profile_chunk(feats: Features, capacity: int, rng: np.random.Generator, source: str) -> Profile:
    kinds = feats.kinds()
    sketches: dict[str, Sketch] = {}
    for name, kind in kinds.items():
        if kind == "numeric":
            sketches[name] = NumericSketch.from_values(feats.table[name].to_numpy(dtype=float))
        elif kind == "categorical":
            sketches[name] = CategoricalSketch.from_values(feats.table[name].to_numpy(dtype=object))
    columns = {
        name: feats.table[name].to_numpy(dtype=float if kinds[name] == "numeric" else object)
        for name in feats.table.columns
    }
    reservoir = Reservoir(capacity)
    if len(feats):
        reservoir.add(columns, feats.vectors, rng)
    dim = None if feats.vectors is None else int(feats.vectors.shape[1])
    mean = None if feats.vectors is None or not len(feats) else feats.vectors.mean(axis=0)
    return Profile(sketches, reservoir, len(feats), dim, mean, source, vector_name=feats.vector_name)


def save_profile(profile: Profile, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a profile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, profile.to_dict(), indent=None, separators=(",", ":"))
    profile.path = str(path)
    return path


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ProfileError(f"{path}: no such profile; {REBUILD_HINT}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: not a readable JSON profile ({exc}); {REBUILD_HINT}") from exc
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ProfileError(f"{path}: not a drift profile (no schema_version); {REBUILD_HINT}")
    if data["schema_version"] != PROFILE_SCHEMA_VERSION:
        raise ProfileError(
            f"{path}: profile schema_version {data['schema_version']} is not supported by this Tollgate "
            f"(expects {PROFILE_SCHEMA_VERSION}); {REBUILD_HINT}"
        )
    try:
        features: dict[str, Sketch] = {}
        for name, d in data["features"].items():
            if d.get("type") == "numeric":
                features[name] = NumericSketch.from_dict(d)
            elif d.get("type") == "categorical":
                features[name] = CategoricalSketch.from_dict(d)
            else:
                raise ProfileError(f"{path}: feature '{name}' has unknown sketch type {d.get('type')!r}")
            if "quantiles" in d and len(d["quantiles"]) != LEVELS.size:
                raise ProfileError(
                    f"{path}: feature '{name}' has a quantile sketch of another size; {REBUILD_HINT}"
                )
        categorical = {n for n, sk in features.items() if isinstance(sk, CategoricalSketch)}
        sketch = data.get("sketch")
        return Profile(
            features,
            Reservoir.from_dict(data["reservoir"], categorical),
            int(data["n_rows"]),
            None if sketch is None else int(sketch["dim"]),
            None if sketch is None else np.asarray(sketch["mean"], dtype=float),
            str(data.get("source", "")),
            float(data.get("created_at", 0.0)),
            str(path),
            SKETCH_FEATURE if sketch is None else str(sketch.get("name", SKETCH_FEATURE)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"{path}: malformed profile ({exc!r}); {REBUILD_HINT}") from exc

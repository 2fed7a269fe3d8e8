"""One drift check: a window of live features against a reference profile, per the drift result contract.

Every feature is checked on its own (drift.feature_checks, in parallel threads); one that cannot be decided
is marked `undecided` with the reason and the rest of the check goes on. Then the decisions are made
together (drift.decide: correction across features, effect floors).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from drift.decide import FeatureSpec, decide, window_p_value
from drift.feature_checks import check_categorical, check_numeric, check_sketch, new_row, undecided
from drift.features import CATEGORICAL, Features
from drift.profile import Profile
from drift.sketches import NumericSketch
from tollgate.contracts.drift_result import DRIFT_SCHEMA_VERSION


@dataclass
class CheckSettings:
    alpha: float = 0.05
    correction: str = "bh"
    specs: dict[str, FeatureSpec] = field(default_factory=dict)
    permutations: int = 500
    seed: int = 0
    histograms: bool = True


def select_window(
    live: Features, seconds: float | None, end: float | None = None
) -> tuple[Features, float | None, float | None]:
    """Rows with timestamps in (end - seconds, end]; end defaults to the newest timestamp in the data."""
    if live.timestamps is None:
        if seconds is not None:
            live.warnings.append("live data has no timestamps: --window ignored, all rows checked")
        return live, None, None
    ts = live.timestamps
    finite = ts[~np.isnan(ts)]
    if finite.size == 0:
        return live, None, None
    end = float(finite.max()) if end is None else end
    start = float(finite.min()) if seconds is None else end - seconds
    mask = (ts > start) & (ts <= end) if seconds is not None else ~np.isnan(ts)
    return live.select(mask), start, end


Job = Callable[[], list[dict[str, Any]]]


def run_check(
    profile: Profile,
    live: Features,
    settings: CheckSettings | None = None,
    window: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """Check a live window against the profile; returns the drift result dict (contract, minus check_id)."""
    settings = settings or CheckSettings()
    warnings = list(live.warnings) + _unknown_spec_warnings(profile, settings)
    jobs, mismatches = _feature_jobs(profile, live, settings)
    rows = _run_parallel(jobs)
    warnings += mismatches + _row_warnings(profile, live, rows)
    multi = None
    if profile.sketch_dim:
        spec = settings.specs.get(profile.vector_name, FeatureSpec())
        multi = check_sketch(profile, live, spec, settings.permutations, settings.seed)
    family = rows + ([multi] if multi else [])
    drifted = decide(family, settings.alpha, settings.correction)
    if multi and multi["status"] == "undecided":
        warnings.append(f"{multi['feature']}: undecided ({multi['reason']})")
    return _result(profile, live, settings, window, rows, multi, drifted, warnings)


def _unknown_spec_warnings(profile: Profile, settings: CheckSettings) -> list[str]:
    kinds = profile.kinds()
    unknown = [s for s in settings.specs if s not in kinds and s.split(".")[0] not in kinds]
    return [f"--method/--min-effect names '{s}', which is not a feature of the profile" for s in unknown]


def _feature_jobs(profile: Profile, live: Features, settings: CheckSettings) -> tuple[list[Job], list[str]]:
    """One job per profile feature (a feature absent from the live data is an undecided row at once),
    and the warnings for features whose kind differs between the profile and the live data."""
    jobs: list[Job] = []
    warnings: list[str] = []
    live_kinds = live.kinds()
    for name, ref in profile.features.items():
        spec = settings.specs.get(name, FeatureSpec())
        if name not in live.table.columns:
            kind = "numeric" if isinstance(ref, NumericSketch) else "categorical"
            absent = new_row(name, kind, ref.n, 0, method=spec.method)
            jobs.append(
                partial(lambda r: [r], undecided(absent, f"feature '{name}' is absent from the live data"))
            )
            continue
        check = check_numeric if isinstance(ref, NumericSketch) else check_categorical
        if check is check_categorical and live_kinds.get(name) == "numeric" and name not in CATEGORICAL:
            warnings.append(
                f"feature '{name}' is categorical in the profile but numeric in the live data; compared as categories"
            )
        jobs.append(partial(check, name, ref, live.table[name], profile, spec, settings.histograms))
    return jobs, warnings


def _run_parallel(jobs: list[Job]) -> list[dict[str, Any]]:
    """Features are independent and numpy releases the GIL in sorts and array passes: one thread per core."""
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        for feature_rows in pool.map(lambda job: job(), jobs):
            rows += feature_rows
    return rows


def _row_warnings(profile: Profile, live: Features, rows: list[dict[str, Any]]) -> list[str]:
    warnings = [
        f"live feature '{c}' is not in the profile; ignored"
        for c in live.table.columns
        if c not in profile.features
    ]
    warnings += [f"{r['feature']}: undecided ({r['reason']})" for r in rows if r["status"] == "undecided"]
    return warnings + [r["warning"] for r in rows if r.get("warning")]


def _result(
    profile: Profile,
    live: Features,
    settings: CheckSettings,
    window: tuple[float | None, float | None],
    rows: list[dict[str, Any]],
    multi: dict[str, Any] | None,
    drifted: bool,
    warnings: list[str],
) -> dict[str, Any]:
    """The drift result dict, per tollgate.contracts.drift_result."""
    family = rows + ([multi] if multi else [])
    return {
        "schema_version": DRIFT_SCHEMA_VERSION,
        "created_at": time.time(),
        "profile": {"path": profile.path, "n_reference": profile.n_rows, "created_at": profile.created_at},
        "window": {
            "start": window[0],
            "end": window[1],
            "n_live": len(live),
            "n_skipped_lines": live.n_skipped,
        },
        "settings": {
            "alpha": settings.alpha,
            "correction": settings.correction,
            "sequential": False,
            "methods": {r["feature"]: r["method"] for r in family},
            "permutations": settings.permutations,
        },
        "features": rows,
        "multivariate": multi,
        "drift_detected": drifted,
        "window_p_value": window_p_value(family),
        "evidently_report": None,
        "warnings": warnings,
    }

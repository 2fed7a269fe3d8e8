"""Per-feature checks: one function per feature kind, each returning contract rows (drift.check runs them).

A feature that cannot be decided (absent, too few values, wrong type, no reference values, a method that does
not apply) gets `status: undecided` with the reason instead of an exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from drift import detectors as det
from drift.decide import DISTANCES, MIN_EFFECT, MIN_ROWS, FeatureSpec, check_method, default_method
from drift.features import Features
from drift.profile import Profile
from drift.sketches import MAX_EXACT, OOV, CategoricalSketch, NumericSketch
from tollgate.contracts.drift_result import FEATURE_FIELDS

HIST_BINS = 20


def new_row(name: str, kind: str, n_ref: int, n_live: int, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(FEATURE_FIELDS)
    row.update(feature=name, kind=kind, n_reference=n_ref, n_live=n_live, status="decided")
    row.update(values)
    return row


def undecided(row: dict[str, Any], reason: str) -> dict[str, Any]:
    row.update(status="undecided", reason=reason, drift=None)
    return row


def _why_undecidable(name: str, kind: str, method: str, n_ref: int, n_live: int) -> str | None:
    if (why := check_method(kind, method)) is not None:
        return why
    if n_ref == 0:
        return f"the reference has no values of '{name}' (the training data does not carry it)"
    if n_live < MIN_ROWS[method]:
        return f"window has {n_live} values of '{name}'; {method} needs at least {MIN_ROWS[method]}"
    return None


def _threshold(spec: FeatureSpec, kind: str, method: str) -> float:
    if spec.min_effect is not None:
        return spec.min_effect
    return DISTANCES[method] if method in DISTANCES else MIN_EFFECT[kind]


def _missingnew_row(
    name: str, n_missing_ref: int, n_ref: int, n_missing_live: int, n_live: int, spec: FeatureSpec
) -> dict[str, Any] | None:
    if n_missing_ref == 0 and n_missing_live == 0:
        return None
    row = new_row(
        f"{name}.missing_rate",
        "rate",
        n_ref,
        n_live,
        method="z",
        effect_threshold=spec.min_effect or MIN_EFFECT["rate"],
    )
    if n_live < MIN_ROWS["z"]:
        return undecided(
            row, f"window has {n_live} rows; the missing-rate test needs at least {MIN_ROWS['z']}"
        )
    out = det.two_proportions(n_missing_ref, n_ref, n_missing_live, n_live)
    row.update(statistic=out.statistic, p_value=out.p_value, effect_size=out.effect_size, details=out.extra)
    return row


def _start_rows(
    name: str,
    kind: str,
    ref: NumericSketch | CategoricalSketch,
    method: str,
    spec: FeatureSpec,
    n_values: int,
    n_rows: int,
) -> list[dict[str, Any]]:
    """The feature's row, plus its missing-rate row when either side has missing values."""
    row = new_row(name, kind, ref.n, n_values, method=method, effect_threshold=_threshold(spec, kind, method))
    miss = _missingnew_row(name, ref.n_missing, ref.n + ref.n_missing, n_rows - n_values, n_rows, spec)
    return [row] if miss is None else [row, miss]


def check_numeric(
    name: str, ref: NumericSketch, column: pd.Series, profile: Profile, spec: FeatureSpec, with_hist: bool
) -> list[dict[str, Any]]:
    raw = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    bad = int((column.notna() & np.isnan(raw)).sum()) if column.dtype == object else 0
    values = raw[np.isfinite(raw)]
    method = spec.method or default_method("numeric", ref.n_distinct if ref.exact else None)
    rows = _start_rows(name, "numeric", ref, method, spec, int(values.size), raw.size)
    row = rows[0]
    if bad:
        row["warning"] = f"{bad} live values of '{name}' are not numbers and count as missing"
    if (why := _why_undecidable(name, "numeric", method, ref.n, int(values.size))) is not None:
        return [undecided(row, why)] + (rows[1:] if ref.n else [])
    sample = profile.reservoir.columns.get(name)
    sample = None if sample is None else sample[np.isfinite(sample)]
    ref_raw = sample if profile.reservoir.complete and sample is not None and sample.size == ref.n else None
    live_sorted = np.sort(values)
    grid = det.NumericGrid.compute(ref, live_sorted) if ref_raw is None else None
    effect = det.wasserstein_norm(ref, live_sorted, ref_raw, grid)
    if method == "ks":
        out = det.ks(ref, live_sorted, ref_raw, grid)
    elif method in ("cvm", "anderson"):
        if sample is None or sample.size < MIN_ROWS[method]:
            return [
                undecided(row, f"{method} needs the reservoir sample of '{name}', which is too small"),
                *rows[1:],
            ]
        out = (
            det.cramer_von_mises(sample, values) if method == "cvm" else det.anderson_darling(sample, values)
        )
    elif method == "chi2":
        if not ref.exact:
            return [
                undecided(
                    row, f"chi2 on '{name}' needs a reference with at most {MAX_EXACT} distinct values"
                ),
                *rows[1:],
            ]
        uniq, counts = np.unique(values, return_counts=True)
        table = det.category_table(
            pd.Series(ref.counts, index=ref.values.astype(str)),
            0,
            ref.n,
            pd.Series(counts, index=uniq.astype(str)),
        )
        out = det.chi_square(table)
    else:
        out = _distance(method, ref, live_sorted, ref_raw, effect)
    row.update(
        statistic=out.statistic,
        p_value=out.p_value,
        effect_size=out.effect_size if method in DISTANCES else effect,
        details=out.extra or None,
    )
    if with_hist:
        lo, hi = min(ref.min, live_sorted[0]), max(ref.max, live_sorted[-1])
        edges = np.linspace(lo, hi, HIST_BINS + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
        cdf = ref.cdf(edges, "left")
        cdf[-1] = 1.0
        row["reference_hist"] = {
            "edges": edges.tolist(),
            "counts": np.round(np.diff(cdf) * ref.n, 3).tolist(),
        }
        live_counts = np.diff(np.searchsorted(live_sorted, edges, side="left"))
        live_counts[-1] += int(np.sum(live_sorted == edges[-1]))  # last bin closed, as numpy's
        row["live_hist"] = {"edges": edges.tolist(), "counts": live_counts.tolist()}
    return rows


def _distance(
    method: str,
    ref: NumericSketch | CategoricalSketch,
    live: np.ndarray,
    ref_raw: np.ndarray | None,
    wnorm: float | None,
) -> det.Outcome:
    if method == "wasserstein":
        return det.Outcome(method, wnorm, None, wnorm)
    ref_p, live_p = det.binned_percents(ref, live, ref_raw, fill_zeros=method == "psi")
    value = det.psi(ref_p, live_p) if method == "psi" else det.jensen_shannon(ref_p, live_p)
    return det.Outcome(method, value, None, value)


def check_categorical(
    name: str, ref: CategoricalSketch, column: pd.Series, profile: Profile, spec: FeatureSpec, with_hist: bool
) -> list[dict[str, Any]]:
    missing = column.isna().to_numpy()
    values = column[~missing].astype(str)
    method = spec.method or default_method("categorical")
    rows = _start_rows(name, "categorical", ref, method, spec, int(values.size), int(missing.size))
    row = rows[0]
    if (why := _why_undecidable(name, "categorical", method, ref.n, int(values.size))) is not None:
        return [undecided(row, why)] + (rows[1:] if ref.n else [])
    live_counts = values.value_counts()
    table = det.category_table(pd.Series(ref.counts, dtype=float), ref.other, ref.n, live_counts)
    n_oov = int(table.loc[OOV, "live"]) if OOV in table.index else 0
    oov = det.oov_rate(ref, n_oov, int(values.size))
    rows.append(
        new_row(
            f"{name}.oov_rate",
            "rate",
            ref.n,
            int(values.size),
            method=oov.method,
            statistic=oov.statistic,
            p_value=oov.p_value,
            effect_size=oov.effect_size,
            effect_threshold=spec.min_effect or MIN_EFFECT["rate"],
            details=oov.extra,
        )
    )
    if method == "chi2":
        out = det.chi_square(table)
        effect = det.jensen_shannon(*det.smoothed_shares(table))
        row.update(
            statistic=out.statistic,
            p_value=out.p_value,
            effect_size=effect,
            details={
                **out.extra,
                "unseen_categories": int((~live_counts.index.isin(list(ref.counts))).sum()),
            },
        )
    else:
        sample = profile.reservoir.columns.get(name)
        ref_raw = sample if profile.reservoir.complete and sample is not None else None
        ref_raw = None if ref_raw is None else pd.Series(ref_raw).dropna().astype(str).to_numpy()
        out = _distance(method, ref, values.to_numpy(), ref_raw, None)
        row.update(statistic=out.statistic, effect_size=out.effect_size)
    if with_hist:
        top = sorted(ref.counts, key=lambda k: -ref.counts[k])[:HIST_BINS]
        row["reference_hist"] = {"categories": [*top, OOV], "counts": [ref.counts[k] for k in top] + [0]}
        row["live_hist"] = {
            "categories": [*top, OOV],
            "counts": [int(live_counts.get(k, 0)) for k in top] + [n_oov],
        }
    return rows


def check_sketch(
    profile: Profile, live: Features, spec: FeatureSpec, permutations: int, seed: int
) -> dict[str, Any]:
    name = profile.vector_name
    ref = profile.reservoir.vectors
    n_ref = 0 if ref is None else int(ref.shape[0])
    n_live = 0 if live.vectors is None else int(live.vectors.shape[0])
    method = spec.method or "mmd"
    row = new_row(
        name,
        "sketch",
        n_ref,
        n_live,
        method=method,
        effect_threshold=_threshold(spec, "sketch", method),
    )
    if method != "mmd":
        return undecided(row, f"method '{method}' does not apply to the prompt sketch (choose mmd)")
    if live.vector_name != name:
        return undecided(
            row,
            f"the profile holds {name} vectors, the live data {live.vector_name}; use --embeddings on both or neither",
        )
    if live.vectors is None:
        return undecided(row, "live data has no prompt sketches")
    if ref is None or live.vectors.shape[1] != ref.shape[1]:
        return undecided(
            row,
            f"prompt sketch dimensions differ (reference {None if ref is None else ref.shape[1]}, live {live.vectors.shape[1]})",
        )
    if min(n_ref, n_live) < MIN_ROWS["mmd"]:
        return undecided(
            row,
            f"mmd needs at least {MIN_ROWS['mmd']} prompts on each side (reference {n_ref}, live {n_live})",
        )
    out = det.mmd_permutation(ref, live.vectors, permutations, seed=seed)
    row.update(statistic=out.statistic, p_value=out.p_value, effect_size=out.effect_size, details=out.extra)
    return row

"""Statistical detectors: one function per method, reference sketch (or reservoir) against live values.

Statistics shared with Evidently follow Evidently 0.7's definitions exactly (evidently/legacy/calculations/
stattests): KS p-value as scipy's `ks_2samp`; Wasserstein normalised by the reference's population std
(floored at 0.001); PSI and Jensen-Shannon over Sturges bins of the pooled range when the reference has more
than 20 distinct values, otherwise over the union of values, PSI with Evidently's zero filling.
When the reservoir holds the whole reference they are computed from the raw reference and match Evidently
to rounding; otherwise from the sketch (CDF error at most 1/QUANTILES).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from drift.sketches import OOV, OTHER, CategoricalSketch, NumericSketch, eval_cdf

WASSERSTEIN_FLOOR = 0.001  # Evidently's floor on the reference std


@dataclass
class Outcome:
    method: str
    statistic: float
    p_value: float | None
    effect_size: float | None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- numeric: KS and Wasserstein on one grid


@dataclass
class NumericGrid:
    """Reference CDF (from the sketch) and live empirical CDF on the union of their breakpoints."""

    ks: float
    wasserstein: float

    @classmethod
    def compute(cls, ref: NumericSketch, live_sorted: np.ndarray) -> NumericGrid:
        """Exact for the sketch's CDF; O(n) after the caller's sort (no second sort, no per-point search)."""
        xs, fs = ref.cdf_points()
        n = live_sorted.size
        ties = live_sorted[1:] == live_sorted[:-1]
        if ties.any():
            starts = np.flatnonzero(np.concatenate([[True], ~ties]))
            uniq, ends = live_sorted[starts], np.append(starts[1:], n)
        else:  # continuous data: every value is its own step
            uniq, ends = live_sorted, np.arange(1, n + 1)
        # Merge the reference breakpoints into the live values; equal values may repeat (zero-width steps).
        pos = np.searchsorted(uniq, xs, side="left")
        grid = np.insert(uniq, pos, xs)
        live_r = np.insert(ends / n, pos, np.searchsorted(live_sorted, xs, side="right") / n)
        size = grid.size
        idx_r = np.bincount(np.searchsorted(grid, xs, side="left"), minlength=size + 1).cumsum()[:size]
        idx_l = np.bincount(np.searchsorted(grid, xs, side="right"), minlength=size + 1).cumsum()[:size]
        d = eval_cdf(xs, fs, grid, "right", idx_r, t_sorted=True)  # F_ref(g), becomes F_ref(g) - F_live(g)
        jump = np.flatnonzero(idx_l != idx_r)  # left and right limits differ only at reference breakpoints
        ref_l_jump = eval_cdf(xs, fs, grid[jump], "left", idx_l[jump]) - d[jump]
        d -= live_r
        # b[k] = F_ref(g[k+1]-) - F_live(g[k]): the difference just before the next breakpoint.
        b = np.diff(live_r)
        b += d[1:]
        nz = jump[jump > 0]
        b[nz - 1] += ref_l_jump[jump > 0]
        h = np.diff(grid)
        abs_d, abs_b = np.abs(d), np.abs(b)
        abs_b_ks = abs_b.copy()
        abs_b_ks[h == 0] = 0.0  # at a repeated value the "left limit" pairing is not a limit
        ks = float(max(abs_d.max(), abs_b_ks.max() if abs_b_ks.size else 0.0))
        # Between breakpoints the live CDF is flat and the reference CDF linear: integrate |a..b| exactly,
        # where the difference changes sign inside an interval it integrates to (|a|+|b|)/2 - |a||b|/(|a|+|b|).
        area = (float(np.dot(h, abs_d[:-1])) + float(np.dot(h, abs_b))) / 2
        c = np.flatnonzero(d[:-1] * b < 0)
        ac, bc = abs_d[c], abs_b[c]
        wasserstein = area - float(np.dot(h[c], ac * bc / (ac + bc)))
        return cls(ks, wasserstein)


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """scipy's asymptotic two-sided KS p-value (what ks_2samp uses once a sample exceeds 10,000).

    In the far tail (below 1e-10) the limiting Kolmogorov distribution is used instead of scipy's finite-n
    kstwo, which takes ~0.4 s per call there (measured at n = 500,000) for a value no decision depends on.
    """
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = np.round(m * n / (m + n))
    limit = float(stats.kstwobign.sf(d * np.sqrt(en)))
    if limit < 1e-10:
        return limit
    return float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def ks(ref: NumericSketch, live: np.ndarray, ref_raw: np.ndarray | None, grid: NumericGrid | None) -> Outcome:
    if ref_raw is not None:
        res = stats.ks_2samp(ref_raw, live)
        return Outcome("ks", float(res.statistic), float(res.pvalue), None)
    assert grid is not None
    return Outcome("ks", grid.ks, ks_pvalue(grid.ks, ref.n, live.size), None)


def wasserstein_norm(
    ref: NumericSketch, live: np.ndarray, ref_raw: np.ndarray | None, grid: NumericGrid | None
) -> float:
    norm = max(ref.std, WASSERSTEIN_FLOOR)
    if ref_raw is not None:
        return float(stats.wasserstein_distance(ref_raw, live) / norm)
    assert grid is not None
    return grid.wasserstein / norm


def cramer_von_mises(ref_sample: np.ndarray, live: np.ndarray) -> Outcome:
    res = stats.cramervonmises_2samp(ref_sample, live, method="asymptotic")
    return Outcome("cvm", float(res.statistic), float(res.pvalue), None, {"reference": "reservoir sample"})


def anderson_darling(ref_sample: np.ndarray, live: np.ndarray) -> Outcome:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when the p-value is capped to [0.001, 0.25]
        res = stats.anderson_ksamp([ref_sample, live])
    return Outcome(
        "anderson",
        float(res.statistic),
        float(res.pvalue),
        None,
        {"reference": "reservoir sample", "p_value_range": [0.001, 0.25]},
    )


# ---------------------------------------------------------------- binned distances (Evidently's binning)


def binned_percents(
    ref: NumericSketch | CategoricalSketch,
    live: np.ndarray,
    ref_raw: np.ndarray | None,
    fill_zeros: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and live shares per bin, binned as Evidently's `get_binned_data`."""
    if isinstance(ref, NumericSketch) and ref.n_distinct > 20:
        lo = min(ref.min, float(live.min()))
        hi = max(ref.max, float(live.max()))
        if ref_raw is not None:
            edges = np.histogram_bin_edges(np.concatenate([ref_raw, live]), bins="sturges")
            ref_p = np.histogram(ref_raw, edges)[0] / ref_raw.size
        else:
            n_bins = int(np.ceil(np.log2(ref.n + live.size))) + 1  # numpy's Sturges rule
            edges = np.linspace(lo, hi, n_bins + 1)
            cdf = ref.cdf(edges, "left")
            cdf[-1] = 1.0  # numpy's last bin is closed
            ref_p = np.diff(cdf)
        live_p = np.histogram(live, edges)[0] / live.size
    else:
        ref_counts = _value_counts(ref, ref_raw)
        live_counts = pd.Series(live).value_counts()
        keys = list(set(ref_counts.index) | set(live_counts.index))
        ref_p = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / ref_counts.sum()
        live_p = live_counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / live.size
    if fill_zeros:
        ref_p, live_p = _fill_zeros(ref_p), _fill_zeros(live_p)
    return ref_p, live_p


def _value_counts(ref: NumericSketch | CategoricalSketch, ref_raw: np.ndarray | None) -> pd.Series:
    if ref_raw is not None:
        return pd.Series(ref_raw).value_counts()
    if isinstance(ref, NumericSketch):
        return pd.Series(ref.counts, index=ref.values)
    counts = dict(ref.counts)
    if ref.other:
        counts[OTHER] = ref.other
    return pd.Series(counts)


def _fill_zeros(p: np.ndarray) -> np.ndarray:
    nonzero = p[p != 0]
    if nonzero.size == 0:
        return p
    fill = nonzero.min() / 10**6 if nonzero.min() <= 0.0001 else 0.0001
    return np.where(p == 0, fill, p)


def psi(ref_p: np.ndarray, live_p: np.ndarray) -> float:
    return float(np.sum((ref_p - live_p) * np.log(ref_p / live_p)))


def jensen_shannon(ref_p: np.ndarray, live_p: np.ndarray) -> float:
    return float(distance.jensenshannon(ref_p, live_p))


# ---------------------------------------------------------------- categorical: chi-square with an OOV bucket


def category_table(
    ref_counts: pd.Series, ref_other: int, n_ref: int, live_counts: pd.Series, min_expected: float = 5.0
) -> pd.DataFrame:
    """Reference and live counts per bucket: known categories, OTHER (rare pooled), OOV (never seen).

    Categories whose expected count is below `min_expected` in either sample are pooled into OTHER so the
    chi-square approximation holds; unseen live categories go to OOV, which the reference never fills.
    """
    ref_s = ref_counts.astype(float)
    known = live_counts.index.isin(ref_s.index)
    oov = float(live_counts[~known].sum())
    live_s = live_counts[known].reindex(ref_s.index, fill_value=0).astype(float)
    n_live = max(float(live_counts.sum()), 1.0)
    rare = (ref_s / n_ref * n_live < min_expected) | (ref_s < min_expected)
    table = pd.DataFrame({"reference": ref_s[~rare], "live": live_s[~rare]})
    table.loc[OTHER] = [float(ref_s[rare].sum() + ref_other), float(live_s[rare].sum())]
    table.loc[OOV] = [0.0, oov]
    return table[(table["reference"] > 0) | (table["live"] > 0)]


def chi_square(table: pd.DataFrame) -> Outcome:
    counts = table[["reference", "live"]].to_numpy().T
    if counts.shape[1] < 2:
        return Outcome("chi2", 0.0, 1.0, None, {"buckets": int(counts.shape[1])})
    res = stats.chi2_contingency(counts, correction=False)
    return Outcome("chi2", float(res.statistic), float(res.pvalue), None, {"buckets": int(counts.shape[1])})


def smoothed_shares(table: pd.DataFrame, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Additive (Laplace/Jeffreys) smoothing so divergences stay finite with empty buckets."""
    ref = table["reference"].to_numpy() + alpha
    live = table["live"].to_numpy() + alpha
    return ref / ref.sum(), live / live.sum()


# ---------------------------------------------------------------- rates: missing and out-of-vocabulary


def two_proportions(k_ref: int, n_ref: int, k_live: int, n_live: int) -> Outcome:
    """Two-sided z-test of equal rates; effect = absolute difference of the rates."""
    p_ref, p_live = k_ref / n_ref, k_live / n_live
    pooled = (k_ref + k_live) / (n_ref + n_live)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_live))
    z = 0.0 if se == 0 else (p_live - p_ref) / se
    return Outcome(
        "z",
        z,
        float(2 * stats.norm.sf(abs(z))),
        abs(p_live - p_ref),
        {"rate": p_live, "reference_rate": p_ref},
    )


def oov_rate(ref: CategoricalSketch, k_oov: int, n_live: int) -> Outcome:
    """Binomial test of the live unseen-category count against Good-Turing's unseen mass of the reference."""
    expected = max(ref.unseen_rate, 1.0 / (ref.n + 1))
    res = stats.binomtest(k_oov, n_live, expected, alternative="greater")
    rate = k_oov / n_live
    return Outcome(
        "binomial",
        rate,
        float(res.pvalue),
        max(0.0, rate - expected),
        {"rate": rate, "reference_rate": expected, "no_evidence": k_oov == 0},
    )


# ---------------------------------------------------------------- multivariate: MMD on prompt sketches


def mmd_permutation(
    ref: np.ndarray,
    live: np.ndarray,
    n_permutations: int = 500,
    max_rows: int = 3000,
    n_features: int = 256,
    seed: int = 0,
) -> Outcome:
    """MMD with a Gaussian kernel (random Fourier features, bandwidth by the median heuristic) and a
    permutation test. Cost is bounded: at most `max_rows` rows per side, O(perms * rows * n_features).

    p-value: the permutation p-value; below its resolution (fewer than 5 permutations reach the observed
    value) the tail of a gamma fitted to the permutation null. statistic: MMD^2 (biased, in feature space); effect: sqrt(max(MMD^2 - median of the permutation
    null, 0)), the MMD above what sampling alone produces at these sizes.
    """
    rng = np.random.default_rng(seed)
    if ref.shape[0] > max_rows:
        ref = ref[rng.choice(ref.shape[0], max_rows, replace=False)]
    if live.shape[0] > max_rows:
        live = live[rng.choice(live.shape[0], max_rows, replace=False)]
    pooled = np.concatenate([ref, live]).astype(np.float32)
    probe = pooled[rng.choice(pooled.shape[0], min(pooled.shape[0], 500), replace=False)]
    sq = (probe * probe).sum(1)
    dists = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * probe @ probe.T, 0.0))
    sigma = float(np.median(dists[dists > 1e-6])) if (dists > 1e-6).any() else 1.0
    w = rng.normal(scale=1.0 / sigma, size=(pooled.shape[1], n_features)).astype(np.float32)
    b = rng.uniform(0, 2 * np.pi, n_features).astype(np.float32)
    phi = np.sqrt(np.float32(2.0 / n_features)) * np.cos(pooled @ w + b)
    n1, n = ref.shape[0], pooled.shape[0]
    side = np.where(np.arange(n) < n1, np.float32(1.0 / n1), np.float32(-1.0 / (n - n1)))

    def stat(weights: np.ndarray) -> np.ndarray:
        diff = weights @ phi  # (k, n_features): mean embedding of one side minus the other's
        return (diff * diff).sum(axis=1)

    observed = float(stat(side[None, :])[0])
    null = []
    for start in range(0, n_permutations, 100):
        k = min(100, n_permutations - start)
        null.append(stat(rng.permuted(np.tile(side, (k, 1)), axis=1)))
    null_arr = np.concatenate(null)
    exceed = int((null_arr >= observed).sum())
    p_perm = (1 + exceed) / (n_permutations + 1)
    p = p_perm
    mean, var = float(null_arr.mean()), float(null_arr.var())
    if exceed < 5 and mean > 0 and var > 0:
        # Beyond the permutations' resolution: the tail of a gamma fitted to the permutation null
        # (Gretton et al.'s approximation for MMD^2), so small p-values survive a multiple-testing correction.
        p = min(p_perm, float(stats.gamma.sf(observed, mean * mean / var, scale=var / mean)))
    effect = math.sqrt(max(observed - float(np.median(null_arr)), 0.0))
    extra = {
        "permutations": n_permutations,
        "p_permutation": p_perm,
        "bandwidth": sigma,
        "rows": [n1, n - n1],
    }
    return Outcome("mmd", observed, p, effect, extra)

"""Two-sample comparison for release decisions: Mann-Whitney U, Cliff's delta, Hodges-Lehmann shift;
Wilcoxon signed-rank for paired samples; Fisher's exact test for error counts; Holm-Bonferroni (or
Benjamini-Hochberg) correction across metrics.

A metric *differs* only when it is significant after correction AND its effect is practically
large: |Cliff's delta| (paired: rank-biserial) >= MIN_CLIFFS_DELTA (Romano's "small") and the shift is at
least `min_effect` of the reference median. The shift is robust to a bimodal mixture (half the
requests fast, half slow) in a way that a difference of medians is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

MIN_CLIFFS_DELTA = 0.147
MAX_PAIRS_SIDE = 2000  # the Hodges-Lehmann shift looks at n_a x n_b differences; subsample beyond this


Values = Sequence[float] | np.ndarray


def _clean(values: Values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def _median(x: np.ndarray) -> float | None:
    return float(np.median(x)) if x.size else None


def _header(
    test: str,
    n: tuple[int, int],
    medians: tuple[float | None, float | None],
    higher_is_better: bool,
    min_effect: float,
) -> dict[str, Any]:
    """The fields every comparison reports, whether or not it had enough data to test."""
    return {
        "test": test,
        "n_a": n[0],
        "n_b": n[1],
        "median_a": medians[0],
        "median_b": medians[1],
        "higher_is_better": higher_is_better,
        "min_effect": min_effect,
    }


def _samples_header(
    test: str, xa: np.ndarray, xb: np.ndarray, higher_is_better: bool, min_effect: float
) -> dict[str, Any]:
    return _header(
        test, (int(xa.size), int(xb.size)), (_median(xa), _median(xb)), higher_is_better, min_effect
    )


def _too_few(header: dict[str, Any]) -> dict[str, Any]:
    return {**header, "p_value": None, "enough_data": False}


def _tested(header: dict[str, Any], p_value: float, effect: dict[str, float], shift: float) -> dict[str, Any]:
    """A latency-like comparison that was tested: its effect size and its shift, also relative to A's median."""
    return {
        **header,
        "enough_data": True,
        "p_value": p_value,
        **effect,
        "hl_shift": shift,
        "relative_shift": shift / (abs(header["median_a"]) or 1.0),
    }


def hodges_lehmann(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Median of all pairwise differences b_j - a_i (the shift of B relative to A)."""
    rng = np.random.default_rng(seed)
    if a.size > MAX_PAIRS_SIDE:
        a = rng.choice(a, MAX_PAIRS_SIDE, replace=False)
    if b.size > MAX_PAIRS_SIDE:
        b = rng.choice(b, MAX_PAIRS_SIDE, replace=False)
    return float(np.median(np.subtract.outer(b, a)))


def compare_samples(
    a: Values, b: Values, higher_is_better: bool = False, min_effect: float = 0.05, min_samples: int = 10
) -> dict[str, Any]:
    """Compare B against A. `better` is "a", "b" or None once `p_adjusted` is filled in by `correct`."""
    xa, xb = _clean(a), _clean(b)
    out = _samples_header("mann-whitney-u", xa, xb, higher_is_better, min_effect)
    if xa.size < min_samples or xb.size < min_samples:
        return _too_few(out)
    u_b = stats.mannwhitneyu(xb, xa, alternative="two-sided")
    delta = float(2.0 * u_b.statistic / (xa.size * xb.size) - 1.0)  # + means B tends higher
    return _tested(out, float(u_b.pvalue), {"cliffs_delta": delta}, hodges_lehmann(xa, xb))


def compare_paired(
    a: Values, b: Values, higher_is_better: bool = False, min_effect: float = 0.05, min_samples: int = 10
) -> dict[str, Any]:
    """Compare B against A pair by pair (a[i] and b[i] were sent at the same moment): Wilcoxon
    signed-rank test, matched-pairs rank-biserial correlation, median paired difference. A slow
    period that hits both members of a pair cancels out of every difference."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(xb)
    xa, xb = xa[keep], xb[keep]
    out = _samples_header("wilcoxon-signed-rank", xa, xb, higher_is_better, min_effect)
    if xa.size < min_samples:
        return _too_few(out)
    diff = xb - xa
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        p_value, r = 1.0, 0.0
    else:
        ranks = stats.rankdata(np.abs(nonzero))
        r = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
        p_value = float(stats.wilcoxon(nonzero).pvalue)
    # rank_biserial: + means B tends higher, the paired counterpart of Cliff's delta
    return _tested(out, p_value, {"rank_biserial": r}, float(np.median(diff)))


def compare_counts(
    failed_a: int, total_a: int, failed_b: int, total_b: int, min_effect: float = 0.01
) -> dict[str, Any]:
    """Error rates of B against A with Fisher's exact test; the effect is the difference of rates."""
    rate_a = failed_a / total_a if total_a else None
    rate_b = failed_b / total_b if total_b else None
    out = _header("fisher-exact", (total_a, total_b), (rate_a, rate_b), False, min_effect)
    if not total_a or not total_b:
        return _too_few(out)
    table = [[failed_a, total_a - failed_a], [failed_b, total_b - failed_b]]
    diff = out["median_b"] - out["median_a"]
    return {
        **out,
        "enough_data": True,
        "p_value": float(stats.fisher_exact(table).pvalue),
        "rate_difference": diff,
        "relative_shift": diff,  # absolute difference of rates: a 1-point change is 0.01
    }


def correct(results: dict[str, dict[str, Any]], alpha: float = 0.05, method: str = "holm") -> None:
    """Fill p_adjusted (Holm-Bonferroni "holm", Benjamini-Hochberg "fdr_bh" or "none"), significant
    and better into each result."""
    names = [n for n, r in results.items() if r.get("p_value") is not None]
    raw = [results[n]["p_value"] for n in names]
    if method == "none" or not names:  # "none": each metric judged alone, as Kayenta's judge does
        adjusted = raw
    else:
        adjusted = list(multipletests(raw, alpha=alpha, method=method)[1])
    for name, p_adj in zip(names, adjusted, strict=True):
        r = results[name]
        r["p_adjusted"] = float(p_adj)
        r["correction"] = method
        big = abs(r["relative_shift"]) >= r["min_effect"] - 1e-12
        if r["test"] == "mann-whitney-u":
            big = big and abs(r["cliffs_delta"]) >= MIN_CLIFFS_DELTA
        elif r["test"] == "wilcoxon-signed-rank":
            big = big and abs(r["rank_biserial"]) >= MIN_CLIFFS_DELTA
        r["significant"] = bool(p_adj < alpha and big)
        b_higher = r["relative_shift"] > 0
        r["better"] = None if not r["significant"] else ("b" if b_higher == r["higher_is_better"] else "a")
    for r in results.values():
        if r.get("p_value") is None:
            r.update(p_adjusted=None, significant=False, better=None)

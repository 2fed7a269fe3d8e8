"""Method choice and decisions: significance AND a minimum effect size, corrected across features.

Defaults (every one can be overridden per feature with `FeatureSpec`):

| kind        | default test                                    | effect size (default minimum)          |
|-------------|-------------------------------------------------|----------------------------------------|
| numeric     | `ks`; `chi2` when the reference has <= 10 values | Wasserstein / reference std (0.05)     |
| categorical | `chi2` with OOV and pooled-rare buckets          | Jensen-Shannon distance, smoothed (0.05)|
| rate        | `z` (missing rate), `binomial` (OOV rate)        | absolute rate difference (0.02)        |
| sketch      | `mmd` permutation test                           | debiased MMD (0.05)                    |

Sample size: each test needs `MIN_ROWS[method]` live values, else the feature is undecided (it is not
guessed). Tests apply at every size; the effect floor is what keeps large windows from flagging everything.
Distance methods (`psi`, `jensenshannon`, `wasserstein`) have no p-value: they decide by threshold alone,
as in Evidently, with Evidently's default thresholds, and do not enter the correction.
P-values are adjusted across all tested features of one check (the multivariate test included) by
Benjamini-Hochberg (default; under the global null its min equals Simes' test) or Bonferroni. An OOV-rate
test on a window without unseen categories cannot reject; it is reported (p = 1) but left out of the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

TESTS = {
    "numeric": ("ks", "cvm", "anderson", "chi2"),
    "categorical": ("chi2",),
    "rate": ("z", "binomial"),
    "sketch": ("mmd",),
}
DISTANCES = {"psi": 0.1, "jensenshannon": 0.1, "wasserstein": 0.1}  # Evidently's default thresholds
DISTANCE_KINDS = {
    "psi": ("numeric", "categorical"),
    "jensenshannon": ("numeric", "categorical"),
    "wasserstein": ("numeric",),
}
MIN_EFFECT = {"numeric": 0.05, "categorical": 0.05, "rate": 0.02, "sketch": 0.05}
MIN_ROWS = {"ks": 20, "cvm": 20, "anderson": 20, "chi2": 20, "z": 20, "binomial": 20, "mmd": 50}
MIN_ROWS.update(dict.fromkeys(DISTANCES, 20))
DISCRETE_MAX_VALUES = 10


@dataclass
class FeatureSpec:
    method: str | None = None
    min_effect: float | None = None


def default_method(kind: str, n_distinct: int | None = None) -> str:
    if kind == "numeric":
        return "chi2" if n_distinct is not None and n_distinct <= DISCRETE_MAX_VALUES else "ks"
    return TESTS[kind][0]


def check_method(kind: str, method: str) -> str | None:
    """Why `method` cannot be used on a feature of this kind, or None when it can."""
    allowed = TESTS.get(kind, ()) + tuple(m for m, kinds in DISTANCE_KINDS.items() if kind in kinds)
    if method in allowed:
        return None
    return f"method '{method}' does not apply to a {kind} feature (choose from {', '.join(allowed)})"


def parse_overrides(items: list[str], what: str) -> dict[str, str]:
    """`FEATURE=VALUE` pairs from repeated CLI flags; ValueError naming the bad item."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{what} '{item}' must look like FEATURE=VALUE")
        out[name] = value
    return out


def adjust(p_values: list[float], correction: str) -> list[float]:
    if not p_values:
        return []
    ps = np.asarray(p_values, dtype=float)
    if correction == "bonferroni":
        return np.minimum(ps * ps.size, 1.0).tolist()
    if correction == "bh":
        return stats.false_discovery_control(ps, method="bh").tolist()
    raise ValueError(f"unknown correction '{correction}' (choose bh or bonferroni)")


def in_family(row: dict[str, Any]) -> bool:
    """Rows whose p-values enter the correction: decided tests that could have produced evidence
    (an OOV-rate test on a window without unseen categories cannot reject and would only dilute it)."""
    no_evidence = bool((row.get("details") or {}).get("no_evidence"))
    return row["status"] == "decided" and row["p_value"] is not None and not no_evidence


def decide(rows: list[dict[str, Any]], alpha: float, correction: str) -> bool:
    """Fill p_adjusted and drift on decided rows in place; True when any row drifted."""
    tested = [r for r in rows if in_family(r)]
    tested_ids = {id(r) for r in tested}
    for row, p_adj in zip(tested, adjust([r["p_value"] for r in tested], correction), strict=True):
        row["p_adjusted"] = p_adj
    for row in rows:
        if row["status"] == "decided" and row["p_value"] is not None and id(row) not in tested_ids:
            row["p_adjusted"] = row["p_value"]
        if row["status"] != "decided":
            row["drift"] = None
        elif row["p_value"] is None:  # distance method: threshold alone
            row["drift"] = bool(row["statistic"] >= row["effect_threshold"])
        else:
            row["drift"] = bool(
                row["p_adjusted"] <= alpha and (row["effect_size"] or 0.0) >= row["effect_threshold"]
            )
    return any(r["drift"] for r in rows)


def window_p_value(rows: list[dict[str, Any]]) -> float | None:
    """One p-value for "nothing drifted" in this window: the smallest BH-adjusted p (Simes' test)."""
    ps = [r["p_value"] for r in rows if in_family(r)]
    return min(adjust(ps, "bh")) if ps else None

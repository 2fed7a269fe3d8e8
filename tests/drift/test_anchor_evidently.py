"""Per-feature statistics equal Evidently 0.7's (the functions DataDriftPreset calls) on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.core import ColumnType

from drift.check import CheckSettings, run_check
from drift.decide import FeatureSpec
from drift.features import features_from_frame
from drift.profile import build_profile


def _datasets(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "normal": rng.normal(size=n_ref),
            "lognormal": rng.lognormal(3, 0.8, size=n_ref),
            "ints": rng.integers(0, 15, size=n_ref).astype(float),  # <= 20 values: Evidently bins by value
            "wide_ints": rng.poisson(60, size=n_ref).astype(float),
            "category": rng.choice(["a", "b", "c", "d"], size=n_ref, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "normal": rng.normal(0.15, 1.1, size=n_cur),
            "lognormal": rng.lognormal(3.1, 0.8, size=n_cur),
            "ints": rng.integers(0, 16, size=n_cur).astype(float),
            "wide_ints": rng.poisson(62, size=n_cur).astype(float),
            "category": rng.choice(["a", "b", "c", "e"], size=n_cur, p=[0.3, 0.3, 0.3, 0.1]),
        }
    )
    return ref, cur


def _ours(ref: pd.DataFrame, cur: pd.DataFrame, method: str, reservoir: int) -> dict[str, dict]:
    profile = build_profile(features_from_frame(ref), reservoir_capacity=reservoir)
    cols = [c for c in ref.columns if not (method in ("ks", "wasserstein") and c == "category")]
    specs = {c: FeatureSpec(method) for c in cols}
    result = run_check(profile, features_from_frame(cur), CheckSettings(specs=specs, histograms=False))
    return {r["feature"]: r for r in result["features"] if r["feature"] in cols}


def _evidently(ref: pd.Series, cur: pd.Series, method: str) -> float:
    kind = ColumnType.Categorical if ref.dtype == object else ColumnType.Numerical
    if method == "ks":
        return float(_ks_stat_test(ref, cur, kind, 0.05)[0])
    if method == "wasserstein":
        return float(_wasserstein_distance_norm(ref, cur, kind, 0.1)[0])
    if method == "psi":
        return float(_psi(ref, cur, kind, 0.1)[0])
    return float(_jensenshannon(ref, cur, kind, 0.1)[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "jensenshannon"])
def test_exact_path_matches_evidently(method: str, seed: int) -> None:
    """Reference fits in the reservoir: statistics equal Evidently's to rounding."""
    ref, cur = _datasets(2000, 600 + 300 * seed, seed)
    ours = _ours(ref, cur, method, reservoir=10_000)
    for col, row in ours.items():
        expected = _evidently(ref[col], cur[col], method)
        got = row["p_value"] if method == "ks" else row["statistic"]
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (col, method)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "jensenshannon"])
def test_sketch_path_matches_evidently(method: str, seed: int) -> None:
    """Reference larger than the reservoir: computed from the sketch, within a small tolerance."""
    ref, cur = _datasets(20_000, 3000, seed + 10)
    ours = _ours(ref, cur, method, reservoir=1000)
    for col, row in ours.items():
        expected = _evidently(ref[col], cur[col], method)
        got = row["p_value"] if method == "ks" else row["statistic"]
        if method == "ks":
            # CDF error of the sketch is <= 1/2048; on the p-value scale that is a few 1e-3 near 0.05
            assert abs(got - expected) <= 0.01 + 0.05 * expected, (col, got, expected)
        else:
            assert got == pytest.approx(expected, rel=0.02, abs=0.002), (col, got, expected)


def test_preset_uses_the_same_functions() -> None:
    """DataDriftPreset's per-column value is the legacy function's value (so the anchor is the preset)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur = _datasets(1500, 500, 3)
    ref, cur = ref[["normal", "lognormal"]], cur[["normal", "lognormal"]]
    definition = DataDefinition(numerical_columns=["normal", "lognormal"])
    snap = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    values = {
        m["config"]["column"]: m["value"]
        for m in snap.dict()["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift")
    }
    ours = _ours(ref, cur, "wasserstein", reservoir=10_000)
    for col in ("normal", "lognormal"):
        # 1,500 reference rows > 1,000: the preset's default for numeric columns is normed Wasserstein
        assert values[col] == pytest.approx(ours[col]["statistic"], rel=1e-9)

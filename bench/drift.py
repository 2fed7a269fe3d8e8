"""Drift benchmark: calibration, power and speed, Tollgate side by side with Evidently in one run.

    python -m bench drift            (or: make bench)

calibration  1,000 no-drift windows (1,000 rows each) against a 200,000-row profile: false-alarm rate per
             check at alpha 0.05 (significance only, then with the default effect floors); the sequential
             e-CUSUM's false alarms over the same run against its ARL bound.
power        100 windows of 10,000 rows: 0.1 SD mean shift (numeric), 5-point category-mix shift, and a
             prompt-topic shift (20% of prompts from a new topic) on the prompt sketches (MMD).
speed        1,000,000-row window of 10 numeric features vs a 1,000,000-row reference: Tollgate's check
             (profile built once) vs Evidently's DataDriftPreset on the same data, and the per-column
             decisions of both.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from bench.common import print_table, write_result
from drift.check import CheckSettings, run_check
from drift.decide import FeatureSpec
from drift.features import features_from_frame
from drift.profile import build_profile
from drift.sequential import SequentialDetector
from drift.synthetic import Mix, request_body
from tollgate.contracts.sketch import prompt_profile, text_of_messages

ALPHA = 0.05
CATS = np.array(["a", "b", "c", "d", "e"])
CAT_P = np.array([0.30, 0.25, 0.20, 0.15, 0.10])


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0, cat_p: np.ndarray = CAT_P) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, n),
            "lognormal": rng.lognormal(3.0, 0.7, n),
            "gamma": rng.gamma(2.0, 2.0, n),
            "small_int": rng.poisson(2.0, n).clip(0, 8).astype(float),
            "category": rng.choice(CATS, n, p=cat_p),
        }
    )


def calibration(rng: np.random.Generator, windows: int = 1000) -> dict[str, Any]:
    profile = build_profile(features_from_frame(_frame(rng, 200_000)))
    no_floor = CheckSettings(
        specs={
            f: FeatureSpec(min_effect=0.0) for f in ("normal", "lognormal", "gamma", "small_int", "category")
        },
        histograms=False,
    )
    rates: dict[str, list[bool]] = {}
    checks, checks_default, window_ps = [], [], []
    start = time.perf_counter()
    for _ in range(windows):
        live = features_from_frame(_frame(rng, 1000))
        res = run_check(profile, live, no_floor)
        checks.append(res["drift_detected"])
        window_ps.append(res["window_p_value"])
        for r in res["features"]:
            if r["p_value"] is not None:
                rates.setdefault(f"{r['feature']} ({r['method']})", []).append(r["p_value"] <= ALPHA)
        checks_default.append(run_check(profile, live, CheckSettings(histograms=False))["drift_detected"])
    elapsed = time.perf_counter() - start
    sequential = {}
    for arl in (20, 50, 100, 1000):
        det = SequentialDetector(arl=arl)
        alarms = sum(det.update(p) for p in window_ps)
        sequential[str(arl)] = {"alarms": alarms, "bound_expected_alarms": windows / arl}
    return {
        "windows": windows,
        "check_false_alarm_rate": float(np.mean(checks)),
        "check_false_alarm_rate_default_effect_floor": float(np.mean(checks_default)),
        "per_test_false_alarm_rate": {k: float(np.mean(v)) for k, v in rates.items()},
        "sequential": sequential,
        "seconds": elapsed,
    }


def _prompt_pool(rng: np.random.Generator, n: int, mix: Mix) -> np.ndarray:
    out = np.empty((n, 64))
    for i in range(n):
        text, system = text_of_messages(request_body(rng, mix)["messages"])
        out[i] = prompt_profile(text, system)["sketch"]
    return out


def power(rng: np.random.Generator, windows: int = 100, rows: int = 10_000) -> dict[str, Any]:
    profile = build_profile(features_from_frame(_frame(rng, 200_000)))
    settings = CheckSettings(histograms=False)
    shifted_p = np.array([0.25, 0.25, 0.20, 0.15, 0.15])
    numeric, category, effects = [], [], {"normal": [], "category": []}
    for _ in range(windows):
        rows_num = {
            r["feature"]: r
            for r in run_check(profile, features_from_frame(_frame(rng, rows, 0.1)), settings)["features"]
        }
        numeric.append(bool(rows_num["normal"]["drift"]))
        effects["normal"].append(rows_num["normal"]["effect_size"])
        rows_cat = {
            r["feature"]: r
            for r in run_check(profile, features_from_frame(_frame(rng, rows, 0.0, shifted_p)), settings)[
                "features"
            ]
        }
        category.append(bool(rows_cat["category"]["drift"]))
        effects["category"].append(rows_cat["category"]["effect_size"])
    # Prompt-topic shift: pools of real prompt sketches; windows resample them.
    base = Mix()
    topic = Mix(topics={"code": 0.32, "cooking": 0.24, "travel": 0.24, "finance": 0.20})
    ref_pool = _prompt_pool(rng, 8_000, base)
    null_pool, shift_pool = _prompt_pool(rng, 4_000, base), _prompt_pool(rng, 4_000, topic)
    ref_df = pd.DataFrame(ref_pool, columns=[f"sketch_{i}" for i in range(64)])
    sk_profile = build_profile(features_from_frame(ref_df))
    sk_windows = 20
    topic_hits, null_hits, mmd_effects = [], [], []
    for _ in range(sk_windows):
        for pool, sink in ((shift_pool, topic_hits), (null_pool, null_hits)):
            idx = rng.integers(0, pool.shape[0], rows)
            live = features_from_frame(pd.DataFrame(pool[idx], columns=ref_df.columns))
            multi = run_check(
                sk_profile, live, CheckSettings(permutations=200, seed=int(rng.integers(1 << 30)))
            )["multivariate"]
            sink.append(bool(multi["drift"]))
            if pool is shift_pool:
                mmd_effects.append(multi["effect_size"])
    return {
        "windows": windows,
        "rows_per_window": rows,
        "mean_shift_0.1sd": {
            "power": float(np.mean(numeric)),
            "median_effect_wasserstein_norm": statistics.median(effects["normal"]),
        },
        "category_mix_shift_5pt": {
            "power": float(np.mean(category)),
            "median_effect_js": statistics.median(effects["category"]),
        },
        "prompt_topic_shift_20pct": {
            "windows": sk_windows,
            "power": float(np.mean(topic_hits)),
            "median_effect_mmd": statistics.median(mmd_effects),
            "no_drift_false_alarm_rate": float(np.mean(null_hits)),
        },
    }


def _evidently(
    ref: pd.DataFrame, cur: pd.DataFrame
) -> tuple[float, float, dict[str, bool], dict[str, float]]:
    import warnings

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(ref.columns))
    start, start_cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
        metrics = snap.dict()["metrics"]
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    values = {
        m["config"]["column"]: float(m["value"])
        for m in metrics
        if m["config"].get("type", "").endswith("ValueDrift")
    }
    thresholds = {
        m["config"]["column"]: m["config"].get("threshold") or 0.1
        for m in metrics
        if m["config"].get("type", "").endswith("ValueDrift")
    }
    return elapsed, elapsed_cpu, {c: v >= thresholds[c] for c, v in values.items()}, values


def speed(rng: np.random.Generator, rows: int = 1_000_000, repeats: int = 5) -> dict[str, Any]:
    cols = [f"f{i}" for i in range(10)]
    ref = pd.DataFrame({c: rng.normal(size=rows) for c in cols})
    shifts = [0.0, 0.0, 0.0, 0.02, 0.03, 0.2, 0.3, 0.5, 1.0, 0.0]  # tiny shifts: significant, not material
    cur = pd.DataFrame({c: rng.normal(s, 1.0, rows) for c, s in zip(cols, shifts, strict=True)})
    start = time.perf_counter()
    profile = build_profile(features_from_frame(ref))
    build_s = time.perf_counter() - start
    profile_bytes = len(json.dumps(profile.to_dict()))
    small_bytes = len(json.dumps(build_profile(features_from_frame(ref.iloc[:100_000])).to_dict()))
    times, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run_check(profile, features_from_frame(cur))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ours = {r["feature"]: r for r in result["features"]}
    ev_s, ev_cpu, ev_drift, ev_values = _evidently(ref, cur)
    same = all(bool(ours[c]["drift"]) == ev_drift[c] for c in cols)
    return {
        "rows": rows,
        "features": len(cols),
        "tollgate_check_s_median": statistics.median(times),
        "tollgate_profile_build_s": build_s,
        "tollgate_check_cpu_s_median": statistics.median(cpu),
        "evidently_s": ev_s,
        "evidently_cpu_s": ev_cpu,
        "speedup": ev_s / statistics.median(times),
        "speedup_cpu_time": ev_cpu / statistics.median(cpu),
        "same_decisions": same,
        "decisions": {
            c: {
                "shift_sd": s,
                "tollgate": bool(ours[c]["drift"]),
                "tollgate_wasserstein_norm": ours[c]["effect_size"],
                "tollgate_ks_p": ours[c]["p_value"],
                "evidently": ev_drift[c],
                "evidently_wasserstein_norm": ev_values[c],
            }
            for c, s in zip(cols, shifts, strict=True)
        },
        "profile_bytes_1m_rows": profile_bytes,
        "profile_bytes_100k_rows": small_bytes,
    }


def calibration_rows(cal: dict[str, Any]) -> list[list[Any]]:
    """False alarms of the checks and of the sequential detector on data without drift."""
    rows = [
        [
            "false alarms / check, alpha 0.05, no effect floor",
            f"{cal['check_false_alarm_rate']:.3f}",
            "0.05 +/- 0.015",
        ],
        [
            "false alarms / check, default effect floors",
            f"{cal['check_false_alarm_rate_default_effect_floor']:.3f}",
            "<= 0.05",
        ],
    ]
    rows += [[f"  per test: {k}", f"{v:.3f}", "0.05"] for k, v in cal["per_test_false_alarm_rate"].items()]
    rows += [
        [
            f"sequential ARL {arl}: alarms in {cal['windows']} windows",
            s["alarms"],
            f"<= {s['bound_expected_alarms']:g} expected",
        ]
        for arl, s in cal["sequential"].items()
    ]
    return rows


def power_rows(pw: dict[str, Any]) -> list[list[Any]]:
    """Detection rates on shifts the detectors must catch, and the MMD test's no-drift alarms."""
    return [
        ["power: 0.1 SD mean shift, 10k rows", f"{pw['mean_shift_0.1sd']['power']:.2f}", ">= 0.9"],
        [
            "power: 5-pt category-mix shift, 10k rows",
            f"{pw['category_mix_shift_5pt']['power']:.2f}",
            ">= 0.9",
        ],
        [
            "power: prompt-topic shift (MMD), 10k rows",
            f"{pw['prompt_topic_shift_20pct']['power']:.2f}",
            ">= 0.9",
        ],
        [
            "MMD false alarms, no-drift prompt windows",
            f"{pw['prompt_topic_shift_20pct']['no_drift_false_alarm_rate']:.2f}",
            "~0.05",
        ],
    ]


def speed_rows(sp: dict[str, Any]) -> list[list[Any]]:
    """Tollgate against Evidently on the same data: time, decisions, profile size."""
    return [
        ["speed: Tollgate check, 1M x 10 (median s)", f"{sp['tollgate_check_s_median']:.2f}", ""],
        ["speed: Evidently DataDriftPreset, 1M x 10 (s)", f"{sp['evidently_s']:.1f}", ""],
        ["speed: ratio Evidently / Tollgate (wall clock)", f"{sp['speedup']:.0f}x", ">= 20x"],
        [
            "speed: ratio Evidently / Tollgate (CPU time)",
            f"{sp['speedup_cpu_time']:.0f}x",
            "(load-independent)",
        ],
        ["same per-column decisions as Evidently", sp["same_decisions"], "True"],
        [
            "profile size: 100k vs 1M reference rows (bytes)",
            f"{sp['profile_bytes_100k_rows']} vs {sp['profile_bytes_1m_rows']}",
            "bounded",
        ],
    ]


def main(argv: list[str]) -> int:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    cal = calibration(rng)
    pw = power(rng)
    sp = speed(rng)
    rows = [*calibration_rows(cal), *power_rows(pw), *speed_rows(sp)]
    print_table(
        "drift: calibration, power, speed (Tollgate vs Evidently)", ["measure", "value", "target"], rows
    )
    path = write_result(
        "drift", {"calibration": cal, "power": pw, "speed": sp, "seconds": time.perf_counter() - started}
    )
    print(f"wrote {path}")
    return 0

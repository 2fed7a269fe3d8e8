"""histogram_quantile parity: our bucket_quantile against PromQL itself (promtool test rules)."""

from __future__ import annotations

import math
import random
import shutil
import subprocess

import pytest
import yaml

from monitors.derive import bucket_quantile

PROMTOOL = shutil.which("promtool")


def _cases() -> list[tuple[str, float, list[tuple[str, float]]]]:
    rng = random.Random(7)
    cases = [
        ("in_inf_bucket", 0.99, [("0.1", 1), ("0.5", 2), ("+Inf", 100)]),
        ("first_bucket", 0.1, [("0.25", 50), ("1", 80), ("+Inf", 100)]),
        ("negative_bound", 0.01, [("-1", 5), ("0", 7), ("+Inf", 10)]),
        ("non_monotonic", 0.5, [("0.1", 10), ("0.2", 8), ("0.4", 30), ("+Inf", 31)]),
        ("duplicate_le", 0.5, [("1", 3), ("1.0", 3), ("2", 10), ("+Inf", 10)]),
        ("exact_edge", 0.5, [("1", 5), ("2", 10), ("+Inf", 10)]),
        ("q_zero", 0.0, [("0.5", 1), ("1", 4), ("+Inf", 4)]),
        ("q_one", 1.0, [("0.5", 2), ("1", 4), ("+Inf", 4)]),
    ]
    bounds = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    for i in range(24):
        counts, total = [], 0
        for _ in bounds:
            total += rng.choice([0, 0, 1, 3, 17, 250])
            counts.append(total)
        total += rng.choice([0, 2])
        buckets = [(repr(b), float(c)) for b, c in zip(bounds, counts, strict=True)] + [
            ("+Inf", float(total))
        ]
        if total:
            cases.append((f"random{i}", rng.choice([0.5, 0.9, 0.95, 0.99, 0.999]), buckets))
    return cases


def _ours(q: float, buckets: list[tuple[str, float]]) -> float:
    return bucket_quantile(q, [(float(le), c) for le, c in buckets])


def test_worked_examples_from_promql_algorithm():
    # rank 95 of 100 falls in (0.5, +Inf]: PromQL answers the highest finite bound
    assert _ours(0.95, [("0.1", 10), ("0.5", 90), ("+Inf", 100)]) == 0.5
    # rank 50 of 100 in (0.1, 0.5] with 80 there and 10 below: 0.1 + 0.4 * 40/80
    assert _ours(0.5, [("0.1", 10), ("0.5", 90), ("+Inf", 100)]) == pytest.approx(0.3)
    assert math.isnan(_ours(0.5, [("0.1", 0), ("+Inf", 0)]))
    # q=0 with an empty first bucket is 0/0 in PromQL too (promtool prints NaN but cannot compare NaN)
    assert math.isnan(_ours(0.0, [("0.5", 0), ("1", 4), ("+Inf", 4)]))
    assert math.isnan(_ours(0.5, [("0.1", 1), ("1", 2)]))  # no +Inf bucket
    assert (
        _ours(-0.1, [("1", 1), ("+Inf", 1)]) == -math.inf and _ours(1.1, [("1", 1), ("+Inf", 1)]) == math.inf
    )


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")
@pytest.mark.timeout(60)
def test_bucket_quantile_matches_promql(tmp_path):
    cases = _cases()
    series, exprs = [], []
    for name, q, buckets in cases:
        for le, count in buckets:
            series.append({"series": f'h_bucket{{case="{name}",le="{le}"}}', "values": f"{count:g}"})
        exprs.append(
            {
                "expr": f'histogram_quantile({q}, h_bucket{{case="{name}"}})',
                "eval_time": "0m",
                "exp_samples": [{"labels": f'{{case="{name}"}}', "value": _ours(q, buckets)}],
            }
        )
    (tmp_path / "rules.yml").write_text("groups: []\n")
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": exprs}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    out = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(cases) > 25

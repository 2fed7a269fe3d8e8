"""Log-linear histogram: <=1% relative error against exact percentiles, exact merge."""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.histogram import QUANTILES, Histogram


@pytest.mark.parametrize("scale", [0.01, 1.0, 250.0, 1e5])
def test_percentiles_within_one_percent(scale):
    values = np.random.default_rng(1).lognormal(0, 1.5, 20000) * scale
    hist = Histogram()
    hist.record_many(values.tolist())
    for q in QUANTILES.values():
        exact = np.percentile(values, q, method="inverted_cdf")
        assert abs(hist.percentile(q) - exact) <= 0.01 * exact
    assert hist.mean == pytest.approx(values.mean())
    assert hist.count == len(values)


def test_merge_equals_recording_everything_in_one():
    rng = np.random.default_rng(2)
    parts = [rng.exponential(20, 3000).tolist() for _ in range(3)]
    merged = Histogram()
    for part in parts:
        h = Histogram()
        h.record_many(part)
        merged.merge(Histogram.from_dict(h.to_dict()))  # through the wire format, as workers send it
    whole = Histogram()
    whole.record_many([v for part in parts for v in part])
    assert merged.buckets == whole.buckets
    assert merged.summary() == whole.summary()


def test_zeros_nans_and_empty():
    hist = Histogram()
    assert hist.summary()["p50"] is None and hist.summary()["count"] == 0
    hist.record_many([0.0, 0.0, float("nan"), 5.0])
    assert hist.count == 3
    assert hist.percentile(50) == 0.0
    assert hist.percentile(100) == 5.0

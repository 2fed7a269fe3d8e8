"""Open-loop schedule statistics and the split of one global schedule across workers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from loadgen.arrivals import ArrivalSchedule


def times(schedule):
    return np.array([t for _, t in schedule])


def test_poisson_rate_and_exponential_gaps():
    t = times(ArrivalSchedule(100.0, "poisson", seed=3, duration_s=200.0))
    gaps = np.diff(t)
    assert len(t) / 200.0 == pytest.approx(100.0, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)
    assert stats.kstest(gaps, "expon", args=(0, 0.01)).pvalue > 0.001


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_gamma_burstiness_sets_the_coefficient_of_variation(burstiness):
    gaps = np.diff(times(ArrivalSchedule(50.0, "gamma", burstiness, seed=4, limit=20000)))
    assert gaps.mean() == pytest.approx(1 / 50.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / np.sqrt(burstiness), rel=0.05)


def test_workers_split_the_global_schedule_exactly():
    whole = list(ArrivalSchedule(20.0, "gamma", 0.5, seed=5, limit=1000))
    parts = [
        list(ArrivalSchedule(20.0, "gamma", 0.5, seed=5, worker_index=w, worker_count=3, limit=1000))
        for w in range(3)
    ]
    assert sorted(item for part in parts for item in part) == whole
    assert [len(p) for p in parts] == [334, 333, 333]


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError):
        ArrivalSchedule(10.0, worker_index=2, worker_count=2)
    with pytest.raises(ValueError):
        ArrivalSchedule(0.0).next()

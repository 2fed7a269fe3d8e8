"""The e-CUSUM keeps false alarms under its ARL bound with no drift and alarms quickly on drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate

from drift.decide import adjust, window_p_value
from drift.sequential import SequentialDetector


def test_calibrator_is_a_valid_e_value() -> None:
    det = SequentialDetector()
    mean, _ = integrate.quad(det.e_value, 0.0, 1.0, limit=200)
    assert mean <= 1.0 + 1e-6


def test_false_alarms_within_the_arl_bound_and_fast_detection() -> None:
    rng = np.random.default_rng(0)
    windows, arl = 5_000, 100
    det = SequentialDetector(arl=arl)
    alarms = sum(det.update(p) for p in rng.random(windows))
    assert alarms <= 2 * windows / arl  # bound: windows / arl expected; 2x leaves room for chance
    det = SequentialDetector(arl=1000)
    delays = [next(i for i in range(1, 50) if det.update(p)) for p in [1e-4] * 3]
    assert max(delays) <= 3
    assert SequentialDetector.from_state(json.loads(json.dumps(det.state()))) == det


def test_no_alarm_without_effect_and_undecidable_windows_leave_state() -> None:
    det = SequentialDetector(arl=10)
    assert not det.update(1e-12, effect_reached=False)
    assert det.log_cusum > det.threshold
    before = det.state()
    assert not det.update(None) and det.state() == before


def test_corrections() -> None:
    ps = [0.01, 0.02, 0.03, 0.5]
    assert adjust(ps, "bonferroni") == [0.04, 0.08, 0.12, 1.0]
    assert np.allclose(adjust(ps, "bh"), [0.04, 0.04, 0.04, 0.5])
    rows = [{"status": "decided", "p_value": p} for p in ps] + [{"status": "undecided", "p_value": None}]
    assert window_p_value(rows) == pytest.approx(0.04)  # Simes

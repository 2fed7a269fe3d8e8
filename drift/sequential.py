"""Continuous monitoring over many windows with a controlled false-alarm rate (an e-CUSUM detector).

Checking every window at alpha = 0.05 raises a false alarm every 20 windows on average, forever. The
sequential mode instead turns each window's p-value for "nothing drifted" (Simes' test over the window's
features, `decide.window_p_value`) into an e-value with the calibrator e(p) = k * p^(k-1) (0 < k < 1;
E[e] <= 1 for a valid p-value) and runs a CUSUM on log e:

    S_t = max(0, S_{t-1} + log e_t)        alarm when S_t >= h = log(ARL),  then S restarts at 0.

S_t is the log of the largest product of e-values over any run of recent windows, an e-detector in the
sense of Shin, Ramdas and Rinaldo (2023). Guarantee: with no drift and valid, independent window p-values,
the average run length to a false alarm is at least ARL windows (default 1,000), so over a run of T
windows the expected number of false alarms is at most T / ARL. Windows share the reference profile, so
they are not exactly independent; with a reference much larger than a window the dependence is small,
and bench/drift.py measures the realised rate. An alarm also needs some feature of the current window
to reach its minimum effect size, which can only remove alarms, so the bound still holds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class SequentialDetector:
    arl: float = 1000.0  # target average run length (windows) between false alarms
    kappa: float = 0.1  # calibrator shape: small kappa rewards very small p-values most
    log_cusum: float = 0.0
    windows: int = 0
    alarms: int = 0

    @property
    def threshold(self) -> float:
        return math.log(self.arl)

    def e_value(self, p: float) -> float:
        p = min(max(p, 1e-300), 1.0)
        return self.kappa * p ** (self.kappa - 1.0)

    def update(self, p_value: float | None, effect_reached: bool = True) -> bool:
        """Feed one window's p-value (None: undecidable window, state unchanged); True on alarm."""
        if p_value is None:
            return False
        self.windows += 1
        self.log_cusum = max(0.0, self.log_cusum + math.log(self.e_value(p_value)))
        if self.log_cusum >= self.threshold and effect_reached:
            self.alarms += 1
            self.log_cusum = 0.0
            return True
        return False

    def state(self) -> dict[str, float]:
        return {**asdict(self), "threshold": self.threshold}

    @classmethod
    def from_state(cls, state: dict[str, float]) -> SequentialDetector:
        return cls(
            arl=float(state["arl"]),
            kappa=float(state["kappa"]),
            log_cusum=float(state["log_cusum"]),
            windows=int(state["windows"]),
            alarms=int(state["alarms"]),
        )

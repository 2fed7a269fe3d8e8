"""Load shapes (closed loop): how many users at time t, from command-line parameters.

    ramp   1 -> USERS linearly over ramp_s (default: the whole duration), then hold
    step   USERS / steps more users every duration / steps seconds (steps=4)
    spike  base users (USERS/4), USERS between spike_at (40% of duration) and spike_at + spike_s (20%)
    soak   ramp to USERS over ramp_s (10% of duration, at most 60 s), then hold for the duration

Options come from `--shape-opt KEY=VALUE` (repeatable). The Locust `LoadTestShape` that uses this
lives in loadgen/locustfile.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tollgate.contracts.durations import DurationError, parse_duration

SHAPES = ("ramp", "step", "spike", "soak")
OPTIONS = {
    "ramp": {"ramp_s"},
    "step": {"steps"},
    "spike": {"base", "spike_at", "spike_s"},
    "soak": {"ramp_s"},
}
DURATION_OPTIONS = {"ramp_s", "spike_at", "spike_s"}  # in the shared duration grammar: 30, 30s, 1m30s


class ShapeError(ValueError):
    pass


@dataclass
class ShapeSpec:
    kind: str
    users: int
    duration_s: float
    options: dict[str, float] = field(default_factory=dict)

    def users_at(self, t: float) -> int:
        peak, duration, opt = self.users, self.duration_s, self.options
        if self.kind in ("ramp", "soak"):
            ramp = opt.get("ramp_s", duration if self.kind == "ramp" else min(60.0, 0.1 * duration))
            return max(1, math.ceil(peak * min(1.0, t / ramp))) if ramp > 0 else peak
        if self.kind == "step":
            steps = max(1, int(opt.get("steps", 4)))
            return max(1, math.ceil(peak * min(steps, math.floor(t / (duration / steps)) + 1) / steps))
        base = int(opt.get("base", max(1, peak // 4)))
        start = opt.get("spike_at", 0.4 * duration)
        return peak if start <= t < start + opt.get("spike_s", 0.2 * duration) else base

    def tick(self, t: float) -> tuple[int, float] | None:
        """(users, spawn rate) at run time t, or None once the duration is over."""
        if t >= self.duration_s:
            return None
        users = self.users_at(t)
        return users, float(max(users, 1))


def parse_shape(kind: str, users: int | None, duration_s: float | None, options: list[str]) -> ShapeSpec:
    if kind not in SHAPES:
        raise ShapeError(f"--shape: unknown shape '{kind}'; choose from {', '.join(SHAPES)}")
    if users is None:
        raise ShapeError("--shape needs --users N (the peak user count); shapes drive closed-loop load")
    if duration_s is None:
        raise ShapeError("--shape needs --duration (the shape's total length)")
    parsed: dict[str, float] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or key not in OPTIONS[kind]:
            allowed = ", ".join(sorted(OPTIONS[kind]))
            raise ShapeError(f"--shape-opt '{item}': {kind} takes KEY=VALUE with KEY one of {allowed}")
        if key in DURATION_OPTIONS:
            try:
                parsed[key] = parse_duration(value, f"--shape-opt {key}")
            except DurationError as exc:
                raise ShapeError(str(exc)) from None
            continue
        try:
            parsed[key] = float(value.rstrip("s"))
        except ValueError:
            raise ShapeError(f"--shape-opt '{item}': '{value}' is not a number") from None
    return ShapeSpec(kind, users, duration_s, parsed)

"""Where the dashboard reads from and how hard it works, from the environment set by `tollgate dashboard`."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "TOLLGATE_DASHBOARD_DATA"
# Benchmarks only: "0" turns off downsampling so bench/dashboard.py can show what it buys.
DOWNSAMPLE_ENV = "TOLLGATE_DASHBOARD_DOWNSAMPLE"
MAX_POINTS = 400  # points per plotted line: one per 2-3 px of a half-width chart


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, "reports"))


def max_points() -> int | None:
    """Points per line after downsampling, or None when downsampling is off (benchmark baseline)."""
    return None if os.environ.get(DOWNSAMPLE_ENV, "1") == "0" else MAX_POINTS


# The scale-out path (`tollgate dashboard --prometheus URL [--alertmanager URL] [--window 1m]`).
PROMETHEUS_ENV = "TOLLGATE_DASHBOARD_PROMETHEUS"
ALERTMANAGER_ENV = "TOLLGATE_DASHBOARD_ALERTMANAGER"
WINDOW_ENV = "TOLLGATE_DASHBOARD_WINDOW_S"


def prometheus_url() -> str | None:
    return os.environ.get(PROMETHEUS_ENV) or None


def alertmanager_url() -> str | None:
    return os.environ.get(ALERTMANAGER_ENV) or None


def window_s() -> float:
    """Rate window of the Prometheus queries, as `tollgate monitor --window` (default 60 s)."""
    return float(os.environ.get(WINDOW_ENV, "60"))

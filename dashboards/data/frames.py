"""The frames the Live and Overview pages plot, whichever reader made them (dashboards/data/store.py for
the monitor store, dashboards/data/prometheus.py for Prometheus): one definition, so the two cannot drift."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

TARGET_COLUMNS = ["target", "up", "last_scrape", "last_error"]
SERIES_COLUMNS = ["ts", "target", "name", "labels", "value"]
LATEST_COLUMNS = ["target", "name", "labels", "value", "ts"]


def targets_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """One row per scrape target: target, up (1, 0 or None), last_scrape (epoch s), last_error."""
    return pd.DataFrame(list(rows), columns=TARGET_COLUMNS)


def series_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """ts, target, name, labels (JSON), value; float ts and value, ordered line by line then by time."""
    out = pd.DataFrame(list(rows), columns=SERIES_COLUMNS)
    out[["ts", "value"]] = out[["ts", "value"]].astype(float)
    return out.sort_values(["name", "target", "labels", "ts"], kind="stable").reset_index(drop=True)


def latest_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """target, name, labels (JSON), value, ts: the newest value of each line."""
    return pd.DataFrame(list(rows), columns=LATEST_COLUMNS)

"""Read-only queries on the monitor store (tollgate.contracts.monitor_store).

The store can hold a week of 5-second samples for many targets (millions of rows), so nothing
here scans a table: distinct values come from loose index scans on `series_lookup`, the latest
values from index seeks, and time series from the coarsest tier that still has enough points,
bucketed in SQL to at most `max_points` points per line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards.data.frames import latest_frame, series_frame, targets_frame

LIVE_TTL_S = 5  # the monitors scrape every few seconds; fresher than this is not useful


class StoreError(Exception):
    """The store exists but cannot be read; the message names the file and the problem."""


def connect(path: str) -> sqlite3.Connection:
    """A read-only connection (the monitors own writes)."""
    p = Path(path)
    if not p.exists():
        raise StoreError(f"{path}: no monitor store (was it moved? `tollgate monitor --store` sets the path)")
    try:
        conn = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True, timeout=2.0)
        conn.execute("SELECT 1 FROM series LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a readable monitor store ({exc})") from exc
    return conn


@contextmanager
def reading(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection whose SQLite errors (locked, damaged, missing table) become StoreError."""
    conn = connect(path)
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: query failed ({exc})") from exc
    finally:
        conn.close()


def table(path: str, sql: str, params: tuple = ()) -> pd.DataFrame:
    """A small table (alerts, silences, outbox) as a DataFrame; StoreError names a missing table."""
    with reading(path) as conn:
        cursor = conn.execute(sql, params)
        return pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])


def _loose_scan(conn: sqlite3.Connection, column: str, where: str, params: tuple) -> list:
    """Distinct values of an indexed column in O(distinct * log n) instead of a full scan."""
    values, last = [], None
    while True:
        cond = f"{where} AND {column} > ?" if last is not None else where
        row = conn.execute(
            f"SELECT MIN({column}) FROM series WHERE {cond}", (*params, last) if last is not None else params
        ).fetchone()
        if row is None or row[0] is None:
            return values
        last = row[0]
        values.append(last)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def targets(path: str) -> pd.DataFrame:
    """target, up, last_scrape, last_error; falls back to the targets seen in `series`."""
    with reading(path) as conn:
        try:
            rows = conn.execute(
                "SELECT target, up, last_scrape, last_error FROM targets ORDER BY target"
            ).fetchall()
        except sqlite3.OperationalError:
            rows = []
        if not rows:
            names = set()
            for tier in _loose_scan(conn, "resolution", "name = ?", ("up",)):
                names.update(_loose_scan(conn, "target", "name = ? AND resolution = ?", ("up", tier)))
            rows = [(t, None, None, None) for t in sorted(names)]
    return targets_frame(rows)


@st.cache_data(ttl=60, show_spinner=False)
def tiers(path: str, name: str) -> list[int]:
    """Resolutions stored for a series name, finest first (0 = raw of unknown spacing)."""
    with reading(path) as conn:
        return [int(r) for r in _loose_scan(conn, "resolution", "name = ?", (name,))]


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def data_end(path: str) -> float | None:
    """Time of the newest sample: the last scrape, else the newest `up` sample per target."""
    table = targets(path)
    if table["last_scrape"].notna().any():
        return float(table["last_scrape"].max())
    ends = []
    with reading(path) as conn:
        for tier in tiers(path, "up"):
            for target in table["target"]:
                row = conn.execute(
                    "SELECT MAX(ts) FROM series WHERE name = 'up' AND resolution = ? AND target = ?",
                    (tier, target),
                ).fetchone()
                if row[0] is not None:
                    ends.append(row[0])
    return max(ends) if ends else None


def pick_tier(available: list[int], span_s: float, max_points: int | None) -> int | None:
    """Coarsest tier that still gives max_points over span_s (finest when none is fine enough)."""
    if not available:
        return None
    if max_points is None:
        return available[0]
    fine_enough = [r for r in available if r <= span_s / max_points]
    return max(fine_enough) if fine_enough else available[0]


@st.cache_data(ttl=30, show_spinner=False, max_entries=64)
def series(
    path: str,
    names: tuple[str, ...],
    target_list: tuple[str, ...],
    start: float,
    end: float,
    max_points: int | None,
) -> pd.DataFrame:
    """Columns ts, target, name, labels, value for the names and targets over [start, end]."""
    rows: list[tuple] = []
    with reading(path) as conn:
        for name in names:
            tier = pick_tier(tiers(path, name), end - start, max_points)
            if tier is None:
                continue
            marks = ",".join("?" * len(target_list))
            where = f"name = ? AND resolution = ? AND target IN ({marks}) AND ts BETWEEN ? AND ?"
            params = (name, tier, *target_list, start, end)
            if max_points is None:
                sql = f"SELECT ts, target, name, labels, value FROM series WHERE {where}"
            else:
                bucket = max(tier, (end - start) / (max_points - 1))  # bucket indexes 0..max_points-1
                sql = (
                    f"SELECT MIN(ts), target, name, labels, AVG(value) FROM series WHERE {where} "
                    f"GROUP BY target, labels, CAST((ts - {start!r}) / {bucket!r} AS INTEGER)"
                )
            rows.extend(conn.execute(sql, params).fetchall())
    return series_frame(rows)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def latest(
    path: str, names: tuple[str, ...], target_list: tuple[str, ...], max_age_s: float = 600
) -> pd.DataFrame:
    """Newest value of each name/target/labels within max_age_s of that target's newest sample."""
    rows = []
    with reading(path) as conn:
        for name in names:
            available = tiers(path, name)
            if not available:
                continue
            for target in target_list:
                q = "FROM series WHERE name = ? AND resolution = ? AND target = ?"
                newest = conn.execute(f"SELECT MAX(ts) {q}", (name, available[0], target)).fetchone()[0]
                if newest is None:
                    continue
                for labels, value, ts in conn.execute(
                    f"SELECT labels, value, ts {q} AND ts = ?", (name, available[0], target, newest)
                ).fetchall():
                    rows.append((target, name, labels, value, ts))
    out = latest_frame(rows)
    if not out.empty:
        out = out[out["ts"] >= out.groupby("target")["ts"].transform("max") - max_age_s]
    return out

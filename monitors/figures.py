"""The contract's derived series (tollgate.contracts.monitor_store.SERIES_NAMES) from one target's history.

What each figure is made of lives in tollgate.contracts.figures (one definition, shared with the
Prometheus export and the dashboard's Prometheus queries); this module evaluates those sources over the
embedded monitor's scrape window. The first source whose metric the newest scrape shows wins, so a
target only yields the figures its server exposes.
"""

from __future__ import annotations

from monitors.derive import History, Matcher, bucket_increases, bucket_quantile, gauge, rate
from monitors.scrape import Labels, Scrape
from tollgate.contracts.figures import FIGURES, Sel, Source

Row = tuple[str, dict[str, str], float]
Window = list[Scrape]


def _matcher(sel: Sel) -> Matcher:
    return Matcher.of(dict(sel.eq), dict(sel.regex))


def _rates(window: Window, terms: tuple[Sel, ...], by: tuple[str, ...]) -> dict[Labels, float]:
    """Sum of the terms' rates per group; a term without samples adds nothing (PromQL's `or 0 * ...`)."""
    out: dict[Labels, float] = {}
    for t in terms:
        for group, value in rate(window, t.metric, _matcher(t), by).items():
            out[group] = out.get(group, 0.0) + value
    return out


def evaluate(window: Window, source: Source) -> dict[Labels, float]:
    """One source's value per group of its `by` labels over the window (empty when it cannot say)."""
    if source.kind == "gauge":
        parts = [gauge(window, t.metric, _matcher(t), source.by, source.agg) for t in source.terms]
        common = set(parts[0]).intersection(*parts[1:])
        values = {g: sum(p[g] for p in parts) for g in common}
    elif len(window) < 2:
        return {}
    elif source.kind == "rate":
        values = _rates(window, source.terms, source.by) or {(): 0.0}
    elif source.kind == "ratio":
        num, den = _rates(window, source.terms, source.by), _rates(window, source.den, source.by)
        values = {g: num.get(g, 0.0) / d for g, d in den.items() if d > 0}
    else:
        t = source.terms[0]
        values = {}
        for group, buckets in bucket_increases(window, t.metric, _matcher(t), source.by).items():
            value = bucket_quantile(source.q, list(buckets.items()))
            if value == value:  # not NaN: the window saw observations
                values[group] = value
    return {g: v * source.scale for g, v in values.items()}


def figure(window: Window, name: str) -> dict[Labels, float] | None:
    """The named figure from the first source the newest scrape exposes; None when none is exposed."""
    if not window:
        return None
    last = window[-1].samples
    source = next((s for s in FIGURES[name] if s.present in last), None)
    return None if source is None else evaluate(window, source)


def derive(history: History, window_s: float) -> list[Row]:
    """All figures for the newest scrape in `history`, rates and quantiles over `window_s`."""
    window = history.window(window_s)
    rows: list[Row] = []
    for name in FIGURES:
        for group, value in sorted((figure(window, name) or {}).items()):
            rows.append((name, dict(group), value))
    return rows


def scrape_rows(scrape: Scrape) -> list[Row]:
    return [("up", {}, 1.0 if scrape.up else 0.0), ("scrape_duration_s", {}, scrape.duration_s)]

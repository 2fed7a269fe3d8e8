"""Two runs side by side: the gate's verdict, summary figures, and per-request significance tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.data.analysis import compare_runs, latency_cdf
from dashboards.data.runs import RunDataError, RunIndex
from dashboards.panels.run_detail import cdf_figure, pick_run, requests_source
from dashboards.settings import max_points
from dashboards.ui import plot, verdict_badge

ALPHA = 0.01
MIN_EFFECT = 0.1  # |Cliff's delta| below this is "negligible" (Romano et al. thresholds)


def _default_pair(index: RunIndex) -> tuple[str | None, str | None]:
    """The newest gated run and its baseline, else the two newest runs."""
    for run_id, gate in index.gates.items():
        base = gate.get("baseline_run_id")
        if base in index.summaries and run_id in index.summaries:
            return base, run_id
    ids = [r for r in index.table["run_id"] if r in index.summaries]
    return (ids[1], ids[0]) if len(ids) >= 2 else (None, None)


def _error_rate_pct(summary: dict[str, Any]) -> float | None:
    failed = summary["requests"].get("failed") or 0
    total = (summary["requests"].get("completed") or 0) + failed
    return 100 * failed / total if total else None


def summary_rows(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        for q in ("p50", "p95", "p99"):
            rows.append(
                (f"{metric} {q}", a["metrics"].get(metric, {}).get(q), b["metrics"].get(metric, {}).get(q))
            )
    for key in ("requests_per_s", "output_tokens_per_s"):
        rows.append((f"throughput {key}", a["throughput"].get(key), b["throughput"].get(key)))
    rows.append(("error rate %", _error_rate_pct(a), _error_rate_pct(b)))
    out = pd.DataFrame(rows, columns=["figure", "A", "B"]).astype({"A": float, "B": float})
    out["change %"] = 100 * (out["B"] - out["A"]) / out["A"]
    return out


def _highlight(row: pd.Series) -> list[str]:
    if not row.get("significant"):
        return [""] * len(row)
    color = (
        "background-color: rgba(230, 80, 80, 0.25)"
        if row["cliffs_delta"] > 0
        else "background-color: rgba(60, 170, 90, 0.25)"
    )
    return [color] * len(row)


def render_compare(root: Path, index: RunIndex) -> None:
    if len(index.summaries) < 2:
        st.info("Comparing needs two complete runs. Run `tollgate load --help` to make another.")
        return
    base, cand = _default_pair(index)
    c1, c2 = st.columns(2)
    with c1:
        a = pick_run(index, "A (baseline)", "cmp_a", base)
    with c2:
        b = pick_run(index, "B (candidate)", "cmp_b", cand)
    if a == b:
        st.info("Pick two different runs.")
        return
    sa, sb = index.summaries[a], index.summaries[b]
    c2.markdown(_gate_note(index.gates.get(b), a))
    st.markdown("#### Summary side by side")
    st.dataframe(
        summary_rows(sa, sb).style.format({"A": "{:.2f}", "B": "{:.2f}", "change %": "{:+.1f}"}),
        hide_index=True,
    )

    src_a, src_b = requests_source(root, a), requests_source(root, b)
    if src_a is None or src_b is None:
        st.warning(
            "Per-request data is missing for one run; significance tests need requests.parquet for both."
        )
        return
    try:
        tests = compare_runs(src_a, src_b, ALPHA, MIN_EFFECT)
        cdf_a, cdf_b = latency_cdf(*src_a, max_points()), latency_cdf(*src_b, max_points())
    except RunDataError as exc:
        st.warning(f"{exc}. Significance tests skipped.", icon=":material/warning:")
        return
    _significance(tests)
    both = pd.concat([cdf_a.assign(run=f"A {a}"), cdf_b.assign(run=f"B {b}")])
    metric = st.selectbox("CDF of", sorted(both["metric"].unique()), key="cmp_metric")
    plot(cdf_figure(both[both["metric"] == metric], color="run"), key="cmp_cdf")


def _gate_note(gate: dict[str, Any] | None, a: str) -> str:
    """B's gate verdict, and whether it was gated against A."""
    if not gate:
        return "B has no gate verdict yet: run `tollgate gate --help`."
    against = gate.get("baseline_run_id")
    note = "" if against == a else f" (gated against `{against or 'SLOs only'}`, not A)"
    return f"Gate verdict for B: {verdict_badge(gate.get('verdict'))}{note}"


def _significance(tests: pd.DataFrame) -> None:
    """The per-metric Mann-Whitney table, differences that matter highlighted, and a one-line verdict."""
    st.markdown("#### Per-request differences (Mann-Whitney U, two-sided)")
    st.caption(
        f"Highlighted: Bonferroni-adjusted p < {ALPHA} and |Cliff's delta| >= {MIN_EFFECT}; "
        "red = B slower, green = B faster. Cliff's delta is P(B > A) - P(B < A)."
    )
    fmt = {
        "A median ms": "{:.1f}",
        "B median ms": "{:.1f}",
        "change_pct": "{:+.1f}",
        "p_value": "{:.2g}",
        "p_adjusted": "{:.2g}",
        "cliffs_delta": "{:+.3f}",
    }
    st.dataframe(
        tests.style.apply(_highlight, axis=1).format(fmt, na_rep="n/a"), hide_index=True, key="significance"
    )
    significant = tests[tests["significant"]]
    if significant.empty:
        st.success("No statistically significant latency difference that matters.")
    else:
        st.warning(
            "Significant differences: "
            + ", ".join(f"{r.metric} {r.change_pct:+.1f}%" for r in significant.itertuples())
        )

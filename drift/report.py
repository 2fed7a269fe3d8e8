"""Drift check output: the rich table, reports/drift/<check_id>.json (atomic), and Evidently's report."""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from drift.features import Features
from drift.profile import Profile
from tollgate.contracts.files import write_json_atomic


def new_check_id(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_result(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write `<out_dir>/<check_id>.json` atomically; sets result["check_id"] (unique within out_dir)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_id = result.get("check_id") or new_check_id(result.get("created_at"))
    path, n = out / f"{check_id}.json", 1
    while path.exists():
        n += 1
        path = out / f"{check_id}-{n}.json"
    result["check_id"] = path.stem
    write_json_atomic(path, _clean(result), indent=1)
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def print_table(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 150)
    w = result["window"]
    title = f"drift check: {w['n_live']} live rows vs {result['profile']['n_reference']} reference rows"
    table = Table(title=title)
    for col in ("feature", "method", "statistic", "p-value", "p-adj", "effect", "min effect", "decision"):
        table.add_column(col, justify="left" if col in ("feature", "method", "decision") else "right")
    rows = list(result["features"]) + ([result["multivariate"]] if result.get("multivariate") else [])
    for r in rows:
        if r["status"] == "undecided":
            decision = "[yellow]undecided[/yellow]"
        else:
            decision = "[red]DRIFT[/red]" if r["drift"] else "[green]ok[/green]"
        table.add_row(
            r["feature"],
            _fmt(r["method"]),
            _fmt(r["statistic"]),
            _fmt(r["p_value"]),
            _fmt(r["p_adjusted"]),
            _fmt(r["effect_size"]),
            _fmt(r["effect_threshold"]),
            decision,
        )
    console.print(table)
    for warning in result.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    seq = result.get("sequential")
    if seq:
        console.print(
            f"sequential: log e-CUSUM {seq['log_cusum']:.2f} / threshold {seq['threshold']:.2f}, alarm={seq['alarm']}"
        )
    verdict = "[red]drift detected[/red]" if result["drift_detected"] else "[green]no drift[/green]"
    console.print(f"{verdict} ({sum(1 for r in rows if r['drift'])} of {len(rows)} features drifted)")


def evidently_report(
    profile: Profile, live: Features, path: str | Path, notes: list[str] | None = None
) -> Path:
    """Evidently's DataDriftPreset on the same window. Evidently needs raw reference rows, so its reference
    is the profile's reservoir sample (the whole reference when it fit in the reservoir).

    Evidently refuses a column that is empty on either side (e.g. completion_tokens when the training set
    has no completions), so such columns are left out of its report and named in `notes`."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    kinds = profile.kinds()
    cols = [c for c in profile.reservoir.columns if c in live.table.columns and kinds.get(c) != "sketch"]
    reference = pd.DataFrame({c: profile.reservoir.columns[c] for c in cols})
    empty = [c for c in cols if reference[c].isna().all() or live.table[c].isna().all()]
    if empty and notes is not None:
        notes.append(
            f"Evidently report leaves out columns empty in the reference or the window: {', '.join(empty)}"
        )
    cols = [c for c in cols if c not in empty]
    num = [c for c in cols if kinds[c] == "numeric"]
    cat = [c for c in cols if kinds[c] == "categorical"]
    reference = reference[cols].copy()
    current = live.table[cols].copy()
    for c in cat:
        reference[c], current[c] = reference[c].astype(str), current[c].astype(str)
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's divide warnings on constant columns inside Evidently
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path

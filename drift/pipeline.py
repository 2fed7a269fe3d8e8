"""One drift check from flags to a published result: the steps `drift check` (once) and `drift watch`
(on a schedule) share.

    settings_from(args)      the check flags -> CheckSettings
    check_window(...)        drift.check.run_check on a window, then the sequential decision when asked
    attach_evidently(...)    Evidently's HTML report of the same window (its failure is a warning, not an error)
    publish(result, out)     reports/drift/<check_id>.json, the table, and the path on stdout

`check_once` is the one-shot pipeline: it loads the profile and the live data itself; the watch feeds
windows of a tailed log to the same steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from drift.check import CheckSettings, run_check, select_window
from drift.decide import FeatureSpec, parse_overrides
from drift.embeddings import EmbeddingsUnavailable
from drift.exit_codes import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK
from drift.features import FeatureError, Features, load_features
from drift.profile import Profile, ProfileError, load_profile
from drift.report import evidently_report, print_table, write_result
from drift.sequential import SequentialDetector


def settings_from(args: argparse.Namespace) -> CheckSettings:
    """CheckSettings from the options `drift.cli.add_check_options` defines; ValueError names the bad flag."""
    methods = parse_overrides(args.method, "--method")
    effects = parse_overrides(args.min_effect, "--min-effect")
    specs: dict[str, FeatureSpec] = {}
    for name in set(methods) | set(effects):
        try:
            min_effect = float(effects[name]) if name in effects else None
        except ValueError as exc:
            raise ValueError(f"--min-effect {name}={effects[name]}: not a number") from exc
        specs[name] = FeatureSpec(methods.get(name), min_effect)
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha {args.alpha} must be between 0 and 1")
    return CheckSettings(
        alpha=args.alpha, correction=args.correction, specs=specs, permutations=args.permutations
    )


def out_error(out: str, exc: OSError) -> str:
    return f"cannot write drift results under {out}: {exc.strerror or exc}; choose a writable --out folder"


def require_evidently(path: str | None) -> None:
    """Fail before any work when --evidently-report is asked for without Evidently installed:
    `tollgate` turns the ModuleNotFoundError into exit 3 and the `drift` extra's pip line."""
    if path and importlib.util.find_spec("evidently") is None:
        raise ModuleNotFoundError("No module named 'evidently'", name="evidently")


def apply_sequential(result: dict[str, Any], seq: SequentialDetector) -> dict[str, Any]:
    """Sequential mode: the alarm (not the per-window test) decides `drift_detected`."""
    rows = result["features"] + ([result["multivariate"]] if result["multivariate"] else [])
    effect = any(
        r["status"] == "decided" and (r["effect_size"] or 0.0) >= (r["effect_threshold"] or 0.0) for r in rows
    )
    alarm = seq.update(result["window_p_value"], effect)
    result["settings"]["sequential"] = True
    result["sequential"] = {**seq.state(), "alarm": alarm, "window_drift": result["drift_detected"]}
    result["drift_detected"] = alarm
    return result


def check_window(
    profile: Profile,
    live: Features,
    settings: CheckSettings,
    window: tuple[float | None, float | None],
    seq: SequentialDetector | None = None,
) -> dict[str, Any]:
    """The drift result of one window; with `seq`, the sequential detector's alarm decides."""
    result = run_check(profile, live, settings, window)
    return result if seq is None else apply_sequential(result, seq)


def attach_evidently(result: dict[str, Any], profile: Profile, live: Features, path: str | None) -> None:
    """Evidently's report of the window at `path` (rewritten each time); its errors become a warning, so
    they never lose the check itself."""
    if not path:
        return
    try:
        result["evidently_report"] = str(evidently_report(profile, live, path, result["warnings"]))
    except Exception as exc:  # Evidently's own errors, whatever their type
        result["warnings"].append(f"Evidently report failed: {type(exc).__name__}: {exc}")


def publish(result: dict[str, Any], out: str) -> Path:
    """Write the result under `out`, print its table and path; OSError when `out` cannot be written."""
    path = write_result(result, out)
    print_table(result)
    print(f"result: {path}", flush=True)
    return path


def check_once(args: argparse.Namespace, seq: SequentialDetector | None = None) -> int:
    """`drift check`: the live file's window (--window) against the profile; exit 0, 1 (drift) or 2."""
    require_evidently(args.evidently_report)
    try:
        settings = settings_from(args)
        profile = load_profile(args.profile)
        live = load_features(args.live, embed=args.embeddings)
    except (FeatureError, ProfileError, ValueError, EmbeddingsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    window, start, end = select_window(live, args.window)
    result = check_window(profile, window, settings, (start, end), seq)
    if len(window) == 0:
        result["warnings"].insert(
            0, f"{args.live}: the window holds no usable rows; nothing could be decided"
        )
    attach_evidently(result, profile, window, args.evidently_report)
    try:
        publish(result, args.out)
    except OSError as exc:
        print(f"error: {out_error(args.out, exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_DRIFT if result["drift_detected"] else EXIT_OK

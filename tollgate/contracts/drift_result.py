"""Drift result contract (drift -> dashboards, monitors): reports/drift/<timestamp>.json.

    schema_version   DRIFT_SCHEMA_VERSION
    check_id         str (the timestamp stem of the file name)
    created_at       float unix seconds
    profile          {"path", "n_reference", "created_at"}
    window           {"start", "end", "n_live", "n_skipped_lines"}   (start/end unix seconds or null)
    settings         {"alpha", "correction": "bh"|"bonferroni", "sequential": bool, ...}
    features         list of FEATURE_FIELDS objects, one per feature (and per missing/oov rate)
    multivariate     {"method", "statistic", "p_value", "effect_size", "drift", "n_live", "n_reference"} | null
    drift_detected   bool, any decided feature or the multivariate test drifted
    evidently_report str path | null
    warnings         list of str (bad lines, undecidable features, ...)

A feature's `drift` is true/false when decided and null when the check could not decide
(`status` "undecided" with `reason`). `reference_hist` / `live_hist` are optional
{"edges": [...], "counts": [...]} (numeric) or {"categories": [...], "counts": [...]} for plots.
"""

DRIFT_SCHEMA_VERSION = 1

FEATURE_FIELDS = (
    "feature",
    "kind",  # numeric | categorical | rate | sketch
    "method",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "effect_threshold",
    "drift",
    "status",  # decided | undecided
    "reason",
    "n_live",
    "n_reference",
)

"""Release-decision contracts: `tollgate ab` (ab.json) and `tollgate canary` (canary.json, webhook).

    reports/ab/<ab-id>/
        ab.json       AB_FIELDS; verdict one of AB_VERDICTS, exit code AB_EXIT[verdict]
        a/ b/         one run folder per side (run_folder contract)
    canary.json       CANARY_FIELDS; verdict one of CANARY_VERDICTS, exit code CANARY_EXIT[verdict]

Exit codes are a promise to CI scripts: ab 0 = ship B (b-better or no-difference), 1 = B is worse
(a-better), 2 = no decision (inconclusive, bad input, a side's run failed); canary 0 = pass,
1 = fail, 2 = no decision (bad input, no data), 3 = marginal.
"""

from __future__ import annotations

RELEASE_SCHEMA_VERSION = 1

AB_VERDICTS = ("b-better", "a-better", "no-difference", "inconclusive")
AB_EXIT = {"b-better": 0, "no-difference": 0, "a-better": 1, "inconclusive": 2}
AB_FIELDS = (
    "schema_version",
    "ab_id",
    "order",
    "url_a",
    "url_b",
    "run_a",
    "run_b",
    "metrics",
    "verdict",
    "exit_code",
    "reasons",
    "created_at",
)

CANARY_VERDICTS = ("pass", "marginal", "fail", "nodata")
CANARY_EXIT = {"pass": 0, "fail": 1, "nodata": 2, "marginal": 3}
CANARY_FIELDS = (
    "schema_version",
    "baseline",
    "canary",
    "window",
    "metrics",
    "score",
    "thresholds",
    "verdict",
    "exit_code",
    "created_at",
)

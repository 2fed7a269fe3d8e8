"""A run folder's summary when its generator died without writing one: at once, from the rows it had
flushed (`tollgate load` saw Locust die), or later with `tollgate load --recover RUN_DIR` (both died)."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from loadgen.config import RunConfig
from loadgen.summary_table import print_summary
from tollgate.contracts.run_folder import SUMMARY_FILE, read_summary


def ensure_summary(
    run_dir: Path, config: RunConfig | dict[str, Any], code: int | None, ended_at: float | None = None
) -> dict[str, Any]:
    """summary.json of the run, written from its flushed rows when the generator died without one;
    the window ends at `ended_at` (default now, the moment the death was seen). `config` is the run's,
    or the dict read back from an old run folder's config.partial.json (written as it was found)."""
    if (run_dir / SUMMARY_FILE).exists():
        return read_summary(run_dir, validate=False)
    from loadgen.collector import Collector
    from loadgen.report import write_run
    from loadgen.validity import combine

    exited = "killed" if code is None else f"code {code}"
    notes = [f"the load generator exited ({exited}) before writing results"]
    now = time.time() if ended_at is None else ended_at
    status = "interrupted" if code in (None, 130, -signal.SIGINT) else "failed"
    # the rows it had flushed to requests.partial.jsonl stream back (bounded memory), histograms rebuilt
    if isinstance(config, RunConfig):
        config = config.to_dict()
    return write_run(run_dir, Collector(), config, status, now, now, combine({}), notes, recover=True)


# --recover refuses a folder whose rows changed more recently (the generator flushes every 2 s)
RECOVER_QUIET_S = 10.0


def recover(run_dir: Path) -> int:
    """`tollgate load --recover RUN_DIR`: the generator and `tollgate load` both died (OOM killer,
    reboot, SIGKILL of the group), leaving requests.partial.jsonl and no summary.json."""
    from loadgen.report import PARTIAL_ROWS, RUN_CONFIG

    if (run_dir / "summary.json").exists():
        print(
            f"tollgate load: --recover {run_dir}: it already has summary.json; nothing to recover",
            file=sys.stderr,
        )
        return 2
    if not (run_dir / PARTIAL_ROWS).is_file() and not (run_dir / RUN_CONFIG).is_file():
        print(
            f"tollgate load: --recover {run_dir}: no {PARTIAL_ROWS} or {RUN_CONFIG} there; "
            "pass the folder of a run whose generator was killed (reports/runs/<run-id>)",
            file=sys.stderr,
        )
        return 2
    age = time.time() - max(
        (run_dir / n).stat().st_mtime for n in (PARTIAL_ROWS, RUN_CONFIG) if (run_dir / n).exists()
    )
    if age < RECOVER_QUIET_S:  # a live generator appends every 2 s: recovering now would race it
        print(
            f"tollgate load: --recover {run_dir}: its rows were written {age:.0f} s ago, so its generator may "
            f"still be running; stop it, or wait {RECOVER_QUIET_S:.0f} s after it died, then rerun",
            file=sys.stderr,
        )
        return 2
    try:
        config = json.loads((run_dir / RUN_CONFIG).read_text())
    except (OSError, ValueError):  # killed before the config was in place, or an older run folder
        config = {"run_id": run_dir.name, "rate": None, "goodput_slo": {}}
    # the window ends at the last flush, not now: the generator may have died long ago
    summary = ensure_summary(run_dir, config, code=None, ended_at=time.time() - age)
    print_summary(summary)
    print(run_dir)
    return 0

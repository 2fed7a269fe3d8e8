"""The run folder before and around the run: proven writable, the config kept for `--recover`, and
the one-line message when it cannot be written."""

from __future__ import annotations

import errno
from pathlib import Path

from loadgen.config import RunConfig


def check_run_dir(run_dir: Path, out: str, flag: str = "--out") -> str | None:
    """Create the run folder and prove it writable before any request; returns the problem, if any.
    `flag` names the option that set `out` in the message."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return (
            f"{flag} {out}: cannot create or write the run folder {run_dir}: {reason}"
            f"{f' ({exc.filename})' if exc.filename else ''}; pass {flag} with a writable folder"
        )
    return None


def write_error(run_dir: Path, exc: OSError) -> str:
    """One line for a run folder that could not be written during or after the run."""
    reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return (
        f"could not write the run folder {run_dir}: {reason}"
        f"{f' ({exc.filename})' if exc.filename else ''}; the run's results are incomplete "
        "(free space or fix permissions, or pass another --out, and run again)"
    )


def write_run_config(run_dir: Path, config: RunConfig) -> None:
    """The run's config, for `--recover` should this process die too (removed with the partial rows)."""
    from loadgen.report import RUN_CONFIG, SECRET_KEYS, write_json_atomic

    write_json_atomic(
        run_dir / RUN_CONFIG, {k: v for k, v in config.to_dict().items() if k not in SECRET_KEYS}
    )

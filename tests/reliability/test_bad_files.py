"""Bad files and unwritable outputs: clear errors (file:line, what, how to fix), never a traceback.

The commands run in-process through the CLI front door (`tollgate.cli.main`), which is what the
console script calls, except `tollgate load`, which runs as a subprocess (it drives Locust).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.reliability.helpers import run_cli
from tests.support.filesystems import small_tmpfs
from tollgate import cli
from tollgate.demo_data import DATA_DIR

DEAD_URL = "http://127.0.0.1:9"  # discard port: nothing answers; bad input must be caught before any request


def run_inprocess(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """`tollgate ARGV` in this process: (exit code, stdout + stderr). Tracebacks fail the test."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 2
    out = capsys.readouterr()
    return code, out.out + out.err


BAD_SLO = {
    "syntax.toml": ("[[check]]\nmetric = \n", "syntax.toml:2"),
    "percentile.toml": ('[[check]]\nmetric = "ttft_ms"\npercentile = "p42"\nmax = 1\n', "percentile"),
    "no_limit.toml": ('[[check]]\nmetric = "error_rate"\n', "error_rate"),
}
BAD_RULES = {
    "syntax.yaml": ("rules:\n  - name: X\n   kind: [\n", "syntax.yaml:3"),
    "kind.yaml": ('rules:\n  - name: X\n    kind: nope\n    op: ">"\n    threshold: 1\n', "nope"),
    "op.yaml": ('rules:\n  - name: X\n    kind: up\n    op: "=>"\n    threshold: 1\n', "=>"),
}
BAD_PROFILES = {
    "truncated.json": ('{"schema_version": 1, "features": {', "truncated.json"),
    "not_profile.json": ('{"hello": "world"}', "not_profile.json"),
    "list.json": ("[1, 2, 3]", "list.json"),
}
BAD_DATASETS = {
    "json.jsonl": ('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n', "json.jsonl:2"),
    "messages.jsonl": (
        '{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": 3}\n',
        "messages.jsonl:2",
    ),
    "role.jsonl": ('{"messages": [{"role": "robot", "content": "hi"}]}\n', "role.jsonl:1"),
}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _expect_clear_error(argv: list[str], expected: str, capsys: pytest.CaptureFixture, figures) -> None:
    """`tollgate ARGV` must exit 2 with a message containing `expected` and no traceback."""
    code, out = run_inprocess(argv, capsys)
    figures.faults += 1
    assert code == 2, out
    assert expected in out and "Traceback" not in out, out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BAD_SLO)
def test_malformed_slo_file(name, tmp_path, capsys, figures):
    """Injects a malformed SLO file (TOML syntax error, unknown percentile, a check without a limit)
    into `tollgate gate`; must hold: exit code 2 and a message naming the file (and line) and the
    problem, no traceback."""
    text, expected = BAD_SLO[name]
    (tmp_path / "run").mkdir()
    argv = ["gate", "--slo", str(_write(tmp_path, name, text)), str(tmp_path / "run")]
    _expect_clear_error(argv, expected, capsys, figures)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BAD_RULES)
def test_malformed_rules_file(name, tmp_path, capsys, figures):
    """Injects a malformed alert-rules file (YAML syntax error, unknown kind, unknown operator) into
    `tollgate monitor`; must hold: exit code 2 before anything is scraped, with a message naming the
    file (and line) and the problem."""
    text, expected = BAD_RULES[name]
    argv = ["monitor", "--target", DEAD_URL, "--rules", str(_write(tmp_path, name, text)), "--duration", "1s"]
    _expect_clear_error([*argv, "--store", str(tmp_path / "m.db")], expected, capsys, figures)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BAD_PROFILES)
def test_malformed_drift_profile(name, tmp_path, capsys, figures):
    """Injects a malformed reference profile (truncated JSON, a JSON object that is not a profile, a
    JSON list) into `tollgate drift check`; must hold: exit code 2 and a message naming the file and
    how to rebuild it, and no drift result written."""
    text, expected = BAD_PROFILES[name]
    argv = ["drift", "check", "--profile", str(_write(tmp_path, name, text))]
    argv += ["--live", str(DATA_DIR / "live_steady.jsonl"), "--out", str(tmp_path / "drift")]
    _expect_clear_error(argv, expected, capsys, figures)
    assert not list((tmp_path / "drift").glob("*.json"))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", BAD_DATASETS)
def test_malformed_load_dataset(name, tmp_path, figures):
    """Injects a malformed dataset (invalid JSON on line 2, `messages` not a list, an unknown role)
    into `tollgate load`; must hold: exit code 2 and a message with file:line, before any request
    is sent and without creating a run folder."""
    text, expected = BAD_DATASETS[name]
    dataset = _write(tmp_path, name, text)
    out = run_cli(
        "load", "--url", DEAD_URL, "--users", "1", "--requests", "1", "--dataset", str(dataset),
        "--out", str(tmp_path / "runs"), timeout=60,
    )  # fmt: skip
    figures.faults += 1
    assert out.returncode == 2, out.stderr[-2000:]
    assert expected in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _unwritable(tmp_path: Path) -> Path:
    """A directory path that cannot be created, even by root: its parent is a regular file."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be\n")
    return blocker / "reports"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("component", ["load", "drift", "monitor"])
def test_unwritable_reports_directory(component, tmp_path, capsys, figures):
    """Injects an output location that cannot be created (its parent is a regular file) for the load
    generator's run folders, the drift results and the monitor store; must hold: a clear one-line
    error naming the path and a non-zero exit (no traceback), and no file presented as complete."""
    target = _unwritable(tmp_path)
    figures.faults += 1
    if component == "load":
        proc = run_cli(
            "load", "--url", DEAD_URL, "--users", "1", "--requests", "1", "--out", str(target), timeout=90
        )
        code, out = proc.returncode, proc.stdout + proc.stderr
    elif component == "drift":
        live = str(DATA_DIR / "live_steady.jsonl")
        profile = tmp_path / "profile.json"
        assert (
            run_inprocess(["drift", "profile", str(DATA_DIR / "training.jsonl"), "-o", str(profile)], capsys)[
                0
            ]
            == 0
        )
        code, out = run_inprocess(
            ["drift", "check", "--profile", str(profile), "--live", live, "--out", str(target)], capsys
        )
    else:
        argv = ["monitor", "--target", DEAD_URL, "--duration", "1s", "--store", str(target / "monitor.db")]
        code, out = run_inprocess(argv, capsys)
    assert code != 0 and "Traceback" not in out, out[-2000:]
    assert "not-a-dir" in out, out[-2000:]


@pytest.mark.soak
@pytest.mark.timeout(180)
def test_disk_full_during_load(shared_server, tmp_path, figures):
    """Injects a full disk (48 KiB tmpfs) under the run folders of a `tollgate load` run; must hold: the
    command exits non-zero within 90 s with a clear 'no space' error, and no summary.json claims the
    run complete."""
    with small_tmpfs(tmp_path / "full") as full:
        figures.faults += 1
        try:
            proc = run_cli(
                "load", "--url", shared_server.url, "--api-key", shared_server.api_key, "--users", "1",
                "--requests", "3", "--output-tokens", "2", "--out", str(full / "runs"), timeout=90,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("tollgate load hung with a full disk")
        assert proc.returncode != 0
        assert "space" in (proc.stdout + proc.stderr).lower()
        for summary in full.rglob("summary.json"):
            assert '"complete"' not in summary.read_text()

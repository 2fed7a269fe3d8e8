"""The base distribution alone (no extras) in a fresh, plain venv: `tollgate load` and `tollgate gate`
work against the mock server, torch is not importable, and `tollgate serve` exits 3 naming the pip line.

Slow (pip installs the base's ~60 wheels: 40 s with a warm pip cache, 145 s on 2 loaded cores), so behind
the `install` marker, which a plain `pytest` deselects: `make test` runs it after the default tier,
`make test-install` (or `pytest -m install`) alone. pip uses this machine's own config (find-links / index).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tollgate.cli import DIST, EXIT_MISSING_EXTRA, pip_line

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.install


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base-venv")
    venv = root / "venv"
    # a plain venv (no --system-site-packages): only what the base distribution declares gets in
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=_env())
    py = venv / "bin" / "python"
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-e", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def run(venv: Path, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=cwd,
    )


@pytest.fixture
def mock_url(base_venv, tmp_path) -> Iterator[str]:
    proc = subprocess.Popen(
        [str(base_venv / "bin" / "python"), "-m", "loadgen.mock_server", "--port", "0", "--ttft-ms", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("MOCK_URL "), f"mock server did not start in the base venv: {line!r}"
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.timeout(900)
def test_base_install_has_no_torch_and_names_the_distribution(base_venv, tmp_path):
    probe = run(base_venv, tmp_path, "python", "-c", "import torch")
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    meta = run(
        base_venv,
        tmp_path,
        "python",
        "-c",
        f"from importlib.metadata import version; print(version({DIST!r}))",
    )
    from tollgate import __version__

    assert meta.returncode == 0 and meta.stdout.strip() == __version__


@pytest.mark.timeout(900)
def test_load_and_gate_run_on_the_base_install(base_venv, mock_url, tmp_path):
    load = run(
        base_venv,
        tmp_path,
        "tollgate",
        *f"load --url {mock_url} --users 2 --duration 2s --output-tokens 8 --input-tokens 16".split(),
        "--out",
        str(tmp_path / "runs"),
    )
    assert load.returncode == 0, load.stderr[-3000:]
    run_dir = Path(load.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["requests"]["completed"] > 0
    assert (run_dir / "report.html").is_file()  # plotly is in the base
    gate = run(
        base_venv, tmp_path, "tollgate", "gate", "--slo", str(REPO / "examples" / "slo.toml"), str(run_dir)
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert json.loads((run_dir / "gate.json").read_text())["verdict"] == "pass"


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("argv", "extra"), [(["serve", "--model", "tiny"], "server"), (["dashboard"], "dashboard")]
)
def test_command_of_a_missing_extra_exits_3_with_the_pip_line(base_venv, tmp_path, argv, extra):
    proc = run(base_venv, tmp_path, "tollgate", *argv, timeout=60)
    assert proc.returncode == EXIT_MISSING_EXTRA
    assert pip_line(extra) in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(900)
def test_drift_check_runs_on_the_base_install_and_evidently_names_its_extra(base_venv, tmp_path):
    """drift is a base command (scipy, pandas, pyarrow); only --evidently-report needs the `drift` extra."""
    from drift.synthetic import capture_log

    for name, seed in (("reference", 1), ("live", 2)):
        rows = capture_log(400, seed=seed)
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    profile = run(
        base_venv, tmp_path, "tollgate", "drift", "profile", "reference.jsonl", "-o", "profile.json"
    )
    assert profile.returncode == 0, profile.stderr[-3000:]
    check = ["drift", "check", "--profile", "profile.json", "--live", "live.jsonl", "--out", "drift"]
    proc = run(base_venv, tmp_path, "tollgate", *check)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # a decision, not bad input
    assert len(list((tmp_path / "drift").glob("*.json"))) == 1
    proc = run(base_venv, tmp_path, "tollgate", *check, "--evidently-report", "report.html")
    assert proc.returncode == EXIT_MISSING_EXTRA and pip_line("drift") in proc.stderr
    assert "Traceback" not in proc.stderr

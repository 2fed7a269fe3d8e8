"""Gate decisions on crafted runs: pass, fail, significant regression, noise, invalid input."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from loadgen import gate_cli
from loadgen.collector import Collector
from loadgen.report import write_run
from loadgen.validity import combine
from tollgate.contracts.run_folder import GATE_FIELDS

SLO = """
[goodput]
ttft_ms = 400

[[check]]
metric = "ttft_ms"
percentile = "p50"
max = 300

[[check]]
metric = "error_rate"
max = 0.05

[baseline]
tolerance = 0.10
confidence = 0.95
method = "{method}"
"""


def make_run(root, name, ttft, failed=0, status="complete", client_bound=False):
    collector = Collector()
    t0 = time.time()
    for i, value in enumerate(ttft):
        row = {
            "request_id": f"{name}-{i}",
            "scenario": "synthetic",
            "worker": 0,
            "intended_send_s": np.nan,
            "send_s": t0 + i * 0.01,
            "first_token_s": t0 + i * 0.01 + value / 1000,
            "end_s": t0 + i * 0.01 + value / 1000 + 0.1,
            "ttft_ms": value,
            "e2e_ms": value + 100,
            "tpot_ms": 10.0,
            "itl_mean_ms": 10.0,
            "client_queue_ms": np.nan,
            "prompt_tokens": 10,
            "output_tokens": 11,
            "output_tokens_estimated": False,
            "n_chunks": 11,
            "status": 200,
            "ok": True,
            "error": "",
        }
        collector.rows.append(row)
        for metric in ("ttft_ms", "e2e_ms", "tpot_ms", "itl_ms"):
            collector.histograms[metric].record(row.get(metric, 10.0))
    for i in range(failed):
        collector.rows.append(
            {
                **collector.rows[0],
                "request_id": f"{name}-f{i}",
                "ok": False,
                "error": "HTTP 500",
                "ttft_ms": np.nan,
            }
        )
    config = {"run_id": name, "rate": None, "goodput_slo": {}}
    validity = combine({"local": {"client_bound": client_bound}})
    write_run(root / name, collector, config, status, t0, t0 + len(ttft) * 0.01 + 1, validity)
    return str(root / name)


@pytest.fixture
def slo(tmp_path):
    def write(method="bootstrap", text=SLO):
        path = tmp_path / f"slo-{method}.toml"
        path.write_text(text.format(method=method))
        return str(path)

    return write


def gate(*args):
    return gate_cli.main(list(args))


def test_pass_and_gate_json(tmp_path, slo):
    run = make_run(tmp_path, "good", np.random.default_rng(0).normal(200, 20, 300))
    assert gate(run, "--slo", slo()) == 0
    result = json.loads((tmp_path / "good" / "gate.json").read_text())
    assert set(GATE_FIELDS) <= set(result) and result["verdict"] == "pass" and result["exit_code"] == 0


def test_threshold_and_error_rate_failures(tmp_path, slo):
    slow = make_run(tmp_path, "slow", np.random.default_rng(0).normal(350, 20, 300))
    assert gate(slow, "--slo", slo()) == 1
    flaky = make_run(tmp_path, "flaky", np.random.default_rng(0).normal(200, 20, 100), failed=10)
    assert gate(flaky, "--slo", slo()) == 1
    checks = json.loads((tmp_path / "flaky" / "gate.json").read_text())["checks"]
    assert [c["passed"] for c in checks] == [True, False]


@pytest.mark.parametrize("method", ["bootstrap", "mannwhitney"])
def test_significant_regression_beyond_tolerance_fails(tmp_path, slo, method):
    rng = np.random.default_rng(1)
    base = make_run(tmp_path, "base", rng.normal(150, 15, 400))
    cand = make_run(tmp_path, "cand", rng.normal(200, 15, 400))  # +33%, far outside noise, still under 300
    assert gate(cand, "--slo", slo(method), "--baseline", base) == 1
    check = json.loads((tmp_path / "cand" / "gate.json").read_text())["checks"][0]
    assert check["baseline"]["decision"] == "regression" and check["baseline"]["significant"]


@pytest.mark.parametrize("method", ["bootstrap", "mannwhitney"])
def test_noisy_but_not_significant_passes(tmp_path, slo, method):
    rng = np.random.default_rng(2)
    base = make_run(tmp_path, "base", rng.lognormal(np.log(150), 0.8, 12))
    cand = make_run(tmp_path, "cand", rng.lognormal(np.log(150), 0.8, 12) * 1.15)  # +15% on 12 noisy samples
    assert gate(cand, "--slo", slo(method), "--baseline", base) == 0
    check = json.loads((tmp_path / "cand" / "gate.json").read_text())["checks"][0]
    assert not check["baseline"]["significant"]


def test_small_significant_change_within_tolerance_passes(tmp_path, slo):
    rng = np.random.default_rng(3)
    base = make_run(tmp_path, "base", rng.normal(150, 2, 500))
    cand = make_run(
        tmp_path, "cand", rng.normal(157, 2, 500)
    )  # +5%: significant, but within the 10% tolerance
    assert gate(cand, "--slo", slo(), "--baseline", base) == 0


def test_invalid_runs_exit_2(tmp_path, slo):
    assert gate(str(tmp_path / "nowhere"), "--slo", slo()) == 2
    bound = make_run(tmp_path, "bound", [100.0] * 10, client_bound=True)
    assert gate(bound, "--slo", slo()) == 2
    assert json.loads((tmp_path / "bound" / "gate.json").read_text())["verdict"] == "invalid"
    stopped = make_run(tmp_path, "stopped", [100.0] * 10, status="interrupted")
    assert gate(stopped, "--slo", slo()) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[check]]\nmetric = 'ttft_ms'\nmax = 5\n",
            r"slo-bootstrap\.toml:1: metric 'ttft_ms' needs percentile",
        ),
        (
            "[[check]]\nmetric = 'error_rate'\nmax = 1\n\n[[check]]\nmetric = 'e2e_ms'\npercentile = 'p99'\n",
            r":5: check on 'e2e_ms' needs max",
        ),
        ("[[check]\nmetric = 1\n", r":1: not valid TOML"),
        (
            "[goodput]\nttft = 5\n[[check]]\nmetric='error_rate'\nmax=1\n",
            r":2: \[goodput\] key 'ttft' unknown",
        ),
        (
            "[[check]]\nmetric='error_rate'\nmax=1\n[baseline]\nmethod = 't-test'\n",
            r":4: \[baseline\] method must be",
        ),
    ],
)
def test_bad_slo_file_exits_2_with_file_and_line(tmp_path, slo, capsys, text, message):
    run = make_run(tmp_path, "ok", [100.0] * 10)
    assert gate(run, "--slo", slo(text=text)) == 2
    assert __import__("re").search(message, capsys.readouterr().err)


def test_example_slo_file_parses():
    from pathlib import Path

    from loadgen.slo import load_slo

    slo = load_slo(Path(__file__).resolve().parents[2] / "examples" / "slo.toml")
    assert slo.goodput == {"ttft_ms": 1000.0, "tpot_ms": 100.0} and len(slo.checks) == 6

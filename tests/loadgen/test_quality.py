"""Quality check of the gate: fp32 vs int8 reference servers (tiny preset) on the fixed prompt set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.gate import quality_checks
from loadgen.quality import PROMPTS, Completion, compare_outputs, prefix_agreement, quality_check
from loadgen.slo import QualitySLO
from tests.loadgen.test_gate import SLO, gate, make_run
from tests.support.servers import start_reference_server

QUALITY = """
[quality]
min_agreement = {agreement}
max_logprob_diff = {diff}
max_tokens = 12
prompts = "prompts.txt"
"""


@pytest.fixture(scope="module")
def int8_server():
    with start_reference_server("--quantization", "int8") as server:
        yield server


def write_slo(tmp_path, agreement, diff):
    (tmp_path / "prompts.txt").write_text("\n".join(p.replace("\n", "\\n") for p in PROMPTS[:6]) + "\n")
    path = tmp_path / "slo.toml"
    path.write_text(SLO.format(method="bootstrap") + QUALITY.format(agreement=agreement, diff=diff))
    return str(path)


def test_prefix_agreement_and_character_fallback():
    assert prefix_agreement([1, 2, 3, 4], [1, 2, 9, 4]) == (0.5, 2)
    assert prefix_agreement([], []) == (1.0, 0)
    assert prefix_agreement([1, 2], [1, 2, 3, 4]) == (0.5, 2)
    row = compare_outputs(Completion("abcd", None, None), Completion("abxy", ["ab", "xy"], [-0.1, -0.2]))
    assert row["unit"] == "characters" and row["agreement"] == 0.5 and row["mean_logprob_diff"] is None


def test_thresholds_judge_the_figures():
    result = {"prompts": 20, "max_tokens": 64, "greedy_agreement": 0.97, "mean_logprob_diff": None}
    strict = quality_checks(result, QualitySLO(min_agreement=1.0, max_logprob_diff=0.1))
    assert [r["passed"] for r in strict] == [False, False]
    assert strict[1]["reason"] == "a server returned no logprobs"
    lenient = quality_checks(result, QualitySLO(min_agreement=0.9))
    assert [r["passed"] for r in lenient] == [True, True]  # no logprob threshold: reported only


def test_same_server_agrees_with_itself(reference_server):
    result = quality_check(reference_server.url, reference_server.url, PROMPTS[:4], max_tokens=12)
    assert result["greedy_agreement"] == 1.0 and result["exact_match"] == 1.0
    assert result["mean_logprob_diff"] < 1e-5 and result["unit"] == "tokens"  # prefix-cache hit: ~1e-7


def test_gate_fails_int8_on_a_strict_threshold_and_passes_a_lenient_one(
    tmp_path, reference_server, int8_server
):
    run = make_run(tmp_path, "cand", np.random.default_rng(0).normal(200, 20, 100))
    urls = ["--candidate-url", int8_server.url, "--baseline-url", reference_server.url]
    assert gate(run, "--slo", write_slo(tmp_path, 1.0, 0.0), *urls) == 1
    result = json.loads((tmp_path / "cand" / "gate.json").read_text())
    rows = {c["name"]: c for c in result["checks"]}
    agreement, diff = rows["quality.greedy_agreement"], rows["quality.mean_logprob_diff"]
    assert diff["value"] > 0 and not diff["passed"]  # int8 moves the logprobs
    assert agreement["passed"] == (agreement["value"] == 1.0)
    assert result["quality"]["prompts"] == 6 and len(result["quality"]["per_prompt"]) == 6
    assert result["quality"]["per_prompt"][-1]["baseline_text"]  # the prompts file was read
    assert gate(run, "--slo", write_slo(tmp_path, 0.0, 100.0), *urls) == 0


def test_quality_section_without_servers_is_invalid(tmp_path, capsys):
    run = make_run(tmp_path, "cand", np.random.default_rng(0).normal(200, 20, 50))
    assert gate(run, "--slo", write_slo(tmp_path, 0.9, 0.1)) == 2
    assert "--candidate-url" in capsys.readouterr().err

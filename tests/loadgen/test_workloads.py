"""Workloads: DIST parsing, determinism with --seed, datasets and their error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.workloads import Dist, Workload, WorkloadError, load_dataset, parse_dist, parse_scenario


@pytest.mark.parametrize(
    ("text", "dist"),
    [
        ("128", Dist("fixed", 128)),
        ("uniform:64:256", Dist("uniform", 64, 256)),
        ("normal:128:32", Dist("normal", 128, 32)),
        ("lognormal:200:0.5", Dist("lognormal", 200, 0.5)),
    ],
)
def test_parse_dist(text, dist):
    assert parse_dist(text) == dist


@pytest.mark.parametrize("text", ["", "abc", "uniform:64", "uniform:9:3", "gauss:1:2", "0", "normal:100:-1"])
def test_bad_dist_says_what_is_accepted(text):
    with pytest.raises(WorkloadError, match="--output-tokens"):
        parse_dist(text, "--output-tokens")


def test_lognormal_mean_is_the_given_mean():
    rng = np.random.default_rng(0)
    samples = [Dist("lognormal", 200, 0.5).sample(rng) for _ in range(20000)]
    assert np.mean(samples) == pytest.approx(200, rel=0.03)


def test_requests_are_deterministic_in_seed_and_index():
    a = Workload(
        scenarios=parse_scenario("synthetic:2,shared-prefix:1,long-context:1"), seed=7, context_tokens=50
    )
    b = Workload(
        scenarios=parse_scenario("synthetic:2,shared-prefix:1,long-context:1"), seed=7, context_tokens=50
    )
    assert [a.request(i) for i in range(30)] == [b.request(i) for i in range(30)]
    assert a.request(1) != Workload(seed=8).request(1)
    names = {a.request(i).scenario for i in range(200)}
    assert names == {"synthetic", "shared-prefix", "long-context"}


def test_shared_prefix_reuses_few_system_prompts():
    w = Workload(scenarios={"shared-prefix": 1.0}, prefix_count=3, prefix_tokens=40, seed=1)
    systems = {w.request(i).messages[0]["content"] for i in range(100)}
    assert len(systems) == 3 and all(len(s.split()) == 40 for s in systems)


def test_openai_jsonl_and_sharegpt(tmp_path):
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}) + "\n\n")
    assert load_dataset(jsonl) == [([{"role": "user", "content": "hi"}], 5)]
    share = tmp_path / "sg.json"
    share.write_text(
        json.dumps([{"conversations": [{"from": "human", "value": "q?"}, {"from": "gpt", "value": "a b c"}]}])
    )
    assert load_dataset(share) == [([{"role": "user", "content": "q?"}], 3)]
    w = Workload(scenarios={"dataset": 1.0}, dataset=load_dataset(share))
    assert w.request(0).max_tokens == 3


def test_dataset_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"messages": [{"role": "user", "content": "ok"}]}\n{"messages": [{"role": "robot", "content": "x"}]}\n'
    )
    with pytest.raises(WorkloadError, match=r"bad\.jsonl:2: messages\[0\] needs a role"):
        load_dataset(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": []}\n')
    with pytest.raises(WorkloadError, match=r"broken\.jsonl:1: 'messages' must be a non-empty list"):
        load_dataset(broken)
    sg = tmp_path / "sg.json"
    sg.write_text('[\n {"conversations": [{"from": "human", "value": "a"}]},\n {"nope": 1}\n]')
    with pytest.raises(WorkloadError, match=r"sg\.json:3: entry 1: missing 'conversations'"):
        load_dataset(sg)
    with pytest.raises(WorkloadError, match="not found"):
        load_dataset(tmp_path / "missing.jsonl")

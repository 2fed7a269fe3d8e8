"""Workloads in tokens: a real `tokenizers` BPE trained here (no hub), the server's /tokenize, the summary."""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.report import lengths
from loadgen.tokens import MIN_WORDS, LocalTokenizer, ServerTokenizer, plan_tokens, resolve
from loadgen.workloads import WORDS, Dist, Workload, WorkloadError


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    """A byte-level BPE tokenizer trained on sentences of common words (most become single tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    rng = np.random.default_rng(1)
    corpus = [" ".join(rng.choice(WORDS[:60], size=30)) for _ in range(400)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, show_progress=False))
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_prompts_are_exactly_n_tokens_with_a_local_tokenizer(tokenizer_json):
    counter = LocalTokenizer(str(tokenizer_json.parent))  # a folder holding tokenizer.json works too
    plan = plan_tokens(counter)
    assert plan.source.startswith("local:") and plan.warnings == [] and len(plan.words) >= MIN_WORDS
    assert set(plan.words) < set(WORDS)  # the rarer words are several tokens: left out
    workload = Workload(input_tokens=Dist("uniform", 1, 300), words=plan.words, seed=3)
    for index in range(20):
        spec = workload.request(index)
        assert counter.count(spec.messages[-1]["content"]) == spec.input_tokens


def test_too_few_single_token_words_keeps_words_and_says_so(tokenizer_json, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["the of and"] * 10, trainers.BpeTrainer(vocab_size=270, show_progress=False))
    tok.save(str(tmp_path / "tokenizer.json"))
    plan = plan_tokens(LocalTokenizer(str(tmp_path / "tokenizer.json")))
    assert plan.words == [] and "sized in words, not tokens" in plan.warnings[0]


def test_missing_tokenizer_file_is_a_clear_error(tmp_path):
    with pytest.raises(WorkloadError, match="no tokenizer.json there"):
        LocalTokenizer(str(tmp_path))


def test_server_tokenize_is_used_when_the_server_has_one(reference_server):
    server = ServerTokenizer(reference_server.url, "", None)
    try:
        assert server.available() and server.count("hello") == len("hello")  # tiny: one token per byte
    finally:
        server.close()
    plan = resolve(reference_server.url, None)  # byte-level: no word is one token
    assert plan.words == [] and "only 0 common words" in plan.warnings[0]


def test_a_server_without_tokenize_keeps_words(tmp_path):
    from tests.support.servers import free_port

    plan = resolve(f"http://127.0.0.1:{free_port()}", None)
    assert plan.words == [] and "no POST /tokenize" in plan.warnings[0]


def test_lengths_report_requested_vs_achieved():
    from loadgen.rowstream import RowStats

    stats = RowStats({})
    for req_in, prompt, out, estimated in ((10, 15, 8, False), (20, 25, 5, False), (-1, 40, 8, True)):
        stats.add(
            {
                "ok": True,
                "requested_input_tokens": req_in,
                "prompt_tokens": prompt,
                "requested_output_tokens": 8,
                "output_tokens": out,
                "output_tokens_estimated": estimated,
            }
        )
    block = lengths(stats, {"tokens": {"source": "local:x"}})
    assert block["tokenizer"] == "local:x"
    assert (
        block["input_tokens"]["requested"]["mean"] == 15.0
        and block["input_tokens"]["achieved"]["p50"] == 20.0
    )
    assert block["template_tokens"]["achieved"] == {"mean": 5.0, "p50": 5.0, "p99": 5.0, "count": 2}
    assert (
        block["output_tokens"]["achieved"]["count"] == 2 and block["output_tokens"]["achieved"]["mean"] == 6.5
    )


@pytest.mark.timeout(90)
def test_load_reports_lengths_and_the_words_warning(tokenizer_json, tmp_path):
    from loadgen.mock_server import start_mock_server
    from tests.loadgen.test_load_e2e import load

    with start_mock_server("--ttft-ms", "2", "--itl-ms", "1") as mock:  # counts prompt tokens as words
        code, _, sized = load(
            tmp_path,
            *f"--url {mock.url} --users 2 --requests 6 --endpoint completions --tokenizer {tokenizer_json}".split(),
        )
        code_words, _, words = load(tmp_path, *f"--url {mock.url} --users 2 --requests 6".split())
    assert code == code_words == 0
    block = sized["lengths"]
    assert block["tokenizer"].startswith("local:") and sized["config"]["tokens"]["words"]
    assert block["input_tokens"]["requested"] == block["input_tokens"]["achieved"]
    assert (
        block["input_tokens"]["requested"]["p50"] == 16.0
        and block["output_tokens"]["achieved"]["mean"] == 8.0
    )
    assert not any("sized in words" in w for w in sized["warnings"])
    assert words["lengths"]["tokenizer"] == ""
    assert words["warnings"] == {
        "prompts are sized in words, not tokens: no --tokenizer given and the server has no POST /tokenize": 6
    }

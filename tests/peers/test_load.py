"""`tollgate load` against real vLLM serving the real SmolLM2: token counts, token timing, 4xx early stop.

Every count is checked against vLLM's own counters over the same run, so a loadgen that estimated
tokens, dropped vLLM's empty-text token chunks from ITL/TPOT, or kept hammering a server that
refuses every request would fail here.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.peers.tools import load, requests_of, scrape, summary_brief, total
from tollgate.contracts.run_folder import STOPPED_EARLY

pytestmark = pytest.mark.timeout(600)

QUESTION = "What is the capital of France? Answer in one sentence."
OUTPUT_TOKENS = 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Short real questions: the model answers, then (ignore_eos) keeps producing special tokens."""
    path = tmp_path_factory.mktemp("data") / "questions.jsonl"
    questions = [QUESTION, "Name three primary colours.", "What is 2 + 2?", "Say hello in French."]
    path.write_text(
        "".join(json.dumps({"messages": [{"role": "user", "content": q}]}) + "\n" for q in questions)
    )
    return path


def _empty_token_chunks(vllm) -> int:
    """Empty-text token chunks vLLM streams for QUESTION (the fact the ITL test relies on)."""
    body = {"model": vllm.model, "messages": [{"role": "user", "content": QUESTION}], "stream": True,
            "max_tokens": OUTPUT_TOKENS, "temperature": 0, "ignore_eos": True}  # fmt: skip
    empty = 0
    with httpx.stream("POST", vllm.url + "/v1/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    delta = choice.get("delta", {})
                    empty += "role" not in delta and delta.get("content") == ""
    return empty


RUNS = {  # name: flags; every combination of endpoint, streaming and loop kind is covered once
    "chat-stream-closed": ["--endpoint", "chat", "--users", "2", "--requests", "6"],
    "chat-nostream-open": ["--endpoint", "chat", "--no-stream", "--rate", "1", "--requests", "4"],
    "completions-stream-open": ["--endpoint", "completions", "--rate", "1", "--requests", "4"],
    "completions-nostream-closed": ["--endpoint", "completions", "--no-stream", "--users", "2", "--requests", "4"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(RUNS))
def test_load_counts_match_vllms_own(vllm, dataset, tmp_path, name):
    flags = RUNS[name]
    stream, chat = "--no-stream" not in flags, "chat" in flags
    workload = ["--dataset", str(dataset)] if chat else ["--input-tokens", "24"]
    before = scrape(vllm.url)
    code, run_dir, summary, stderr = load(
        tmp_path, vllm.url, *flags, *workload, "--output-tokens", str(OUTPUT_TOKENS), "--ignore-eos",
        "--temperature", "0", "--name", name,
    )  # fmt: skip
    after = scrape(vllm.url)
    assert code == 0, f"{summary_brief(summary)}\n{stderr[-3000:]}"
    n = int(flags[flags.index("--requests") + 1])
    assert summary["requests"]["completed"] == n and summary["requests"]["failed"] == 0
    assert summary["requests"]["output_tokens_estimated"] == 0  # counts come from vLLM's usage
    rows = requests_of(run_dir)
    assert len(rows) == n and not rows["output_tokens_estimated"].any()
    assert (rows["output_tokens"] == OUTPUT_TOKENS).all()  # ignore_eos: exactly max_tokens
    generated = total(after, "vllm:generation_tokens_total") - total(before, "vllm:generation_tokens_total")
    prompted = total(after, "vllm:prompt_tokens_total") - total(before, "vllm:prompt_tokens_total")
    assert rows["output_tokens"].sum() == generated
    assert rows["prompt_tokens"].sum() == prompted
    if stream:
        # one chunk per token, empty-text ones included: every token is an arrival in ITL/TPOT
        assert (rows["n_chunks"] == rows["output_tokens"]).all(), rows[["n_chunks", "output_tokens"]]
        assert summary["metrics"]["itl_ms"]["count"] == (rows["output_tokens"] - 1).sum()
        assert summary["metrics"]["ttft_ms"]["p50"] < summary["metrics"]["e2e_ms"]["p50"]
    if "--rate" in flags:
        assert summary["metrics"]["ttft_from_intended_ms"]["count"] == n


def test_vllm_streams_empty_text_token_chunks(vllm):
    """The workload above makes vLLM send empty-text token chunks, so its ITL check is not vacuous."""
    assert _empty_token_chunks(vllm) > 0


def test_uniform_4xx_stops_early_with_the_servers_message(vllm, tmp_path):
    code, _, summary, stderr = load(
        tmp_path, vllm.url, "--model", "no-such-model", "--users", "2", "--duration", "60s",
        "--output-tokens", "4", "--input-tokens", "8",
    )  # fmt: skip
    assert code == 2, summary_brief(summary)
    verdict = summary[STOPPED_EARLY]
    assert verdict["status"] == 404
    assert "no-such-model" in verdict["message"] and "no-such-model" in stderr  # vLLM's own words
    assert summary["requests"]["failed"] < 100  # stopped after its first few, not 60 s of 404s

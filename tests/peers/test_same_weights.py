"""The reference server and vLLM serve the same exported checkpoint, and behave alike on it."""

from __future__ import annotations

import httpx
import pytest

from tests.peers.conftest import start_vllm
from tests.peers.tools import load, summary_brief
from tests.support.servers import start_reference_server

pytestmark = pytest.mark.timeout(900)

PROMPTS = ["What is the capital of France?", "Name three primary colours.", "Say hello in French."]


def _chat(url: str, model: str, prompt: str) -> httpx.Response:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 12,
        "temperature": 0,
    }
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=120)


def test_greedy_answers_agree(vllm, reference):
    served = httpx.get(reference.url + "/v1/models", timeout=10).json()["data"][0]["id"]
    for prompt in PROMPTS:
        theirs, ours = _chat(vllm.url, vllm.model, prompt).json(), _chat(reference.url, served, prompt).json()
        assert ours["usage"]["prompt_tokens"] == theirs["usage"]["prompt_tokens"]  # same chat template
        assert ours["choices"][0]["message"]["content"] == theirs["choices"][0]["message"]["content"], prompt
    assert "Paris" in _chat(vllm.url, vllm.model, PROMPTS[0]).json()["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def untemplated_vllm(untemplated_checkpoint):
    # --enforce-eager skips torch.compile: ~65 s to start instead of ~100-180 s; only its 400 is used
    with start_vllm(untemplated_checkpoint, "--enforce-eager") as served:
        yield served


def test_without_a_chat_template_both_refuse_chat_and_load_stops_early(
    untemplated_vllm, untemplated_checkpoint, tmp_path
):
    refused = _chat(untemplated_vllm.url, untemplated_vllm.model, "hi")
    assert refused.status_code == 400 and "chat template" in refused.json()["error"]["message"]
    code, _, summary, stderr = load(
        tmp_path, untemplated_vllm.url, "--endpoint", "chat", "--users", "2", "--duration", "60s",
        "--input-tokens", "8", "--output-tokens", "4",
    )  # fmt: skip
    assert code == 2, summary_brief(summary)
    assert "chat template" in stderr and summary["requests"]["failed"] < 100
    with start_reference_server(
        "--model", str(untemplated_checkpoint), "--max-model-len", "1024", "--num-kv-blocks", "128"
    ) as ours:
        served = httpx.get(ours.url + "/v1/models", timeout=10).json()["data"][0]["id"]
        ours_refused = _chat(ours.url, served, "hi")
        assert ours_refused.status_code == 400, ours_refused.text
        assert "chat template" in ours_refused.json()["error"]["message"]
        completion = httpx.post(
            ours.url + "/v1/completions",
            json={"model": served, "prompt": "Hello", "max_tokens": 2},
            timeout=60,
        )
        assert completion.status_code == 200  # only chat needs the template

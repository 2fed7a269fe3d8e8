"""POST /tokenize and /detokenize with vLLM's shapes, consistent with what generation counts."""

from __future__ import annotations

import httpx


def test_tokenize_prompt_counts_like_a_completion(reference_server):
    url = reference_server.url
    body = httpx.post(f"{url}/tokenize", json={"prompt": "hello there", "return_token_strs": True}).json()
    assert set(body) == {"count", "max_model_len", "tokens", "token_strs"}
    assert body["count"] == len(body["tokens"]) == len(body["token_strs"]) and body["max_model_len"] > 0
    done = httpx.post(f"{url}/v1/completions", json={"prompt": "hello there", "max_tokens": 1}).json()
    assert done["usage"]["prompt_tokens"] == body["count"]
    plain = httpx.post(f"{url}/tokenize", json={"prompt": "hello there", "add_special_tokens": False}).json()
    assert "token_strs" not in plain and plain["count"] <= body["count"]
    back = httpx.post(f"{url}/detokenize", json={"tokens": plain["tokens"]}).json()
    assert back == {"prompt": "hello there"}


def test_tokenize_messages_counts_like_a_chat_request(reference_server):
    url = reference_server.url
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    body = httpx.post(f"{url}/tokenize", json={"messages": messages}).json()
    chat = httpx.post(f"{url}/v1/chat/completions", json={"messages": messages, "max_tokens": 1}).json()
    assert body["count"] == chat["usage"]["prompt_tokens"] == len(body["tokens"])


def test_tokenize_errors_are_400_with_the_field(reference_server):
    url = reference_server.url
    wrong = httpx.post(f"{url}/tokenize", json={"prompt": "x", "model": "nope"})
    assert wrong.status_code == 400 and "does not exist" in wrong.json()["error"]["message"]
    out_of_vocab = httpx.post(f"{url}/detokenize", json={"tokens": [10**9]})
    assert out_of_vocab.status_code == 400 and out_of_vocab.json()["error"]["param"] == "tokens"
    assert httpx.post(f"{url}/detokenize", json={"tokens": [-1]}).status_code == 400
    assert httpx.post(f"{url}/tokenize", json={}).status_code == 400

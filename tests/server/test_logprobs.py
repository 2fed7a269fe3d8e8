"""`logprobs` on /v1/completions in vLLM's shape, collected and streamed, on the tiny preset."""

from __future__ import annotations

import math

from tests.server.sse import read_events

BODY = {"prompt": "The gate", "max_tokens": 8, "temperature": 0, "logprobs": 3, "ignore_eos": True}


def test_completion_logprobs_shape_and_greedy_consistency(client):
    body = client.post("/v1/completions", json={**BODY, "return_token_ids": True}).json()
    choice = body["choices"][0]
    lp = choice["logprobs"]
    n = body["usage"]["completion_tokens"]
    assert n == 8 and len(choice["token_ids"]) == n
    assert set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
    assert all(len(lp[k]) == n for k in lp)
    offsets = [0]
    for token in lp["tokens"][:-1]:
        offsets.append(offsets[-1] + len(token))
    assert lp["text_offset"] == offsets
    for token, value, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert value <= 0 and 1 <= len(top) <= 4 and token in top
        assert math.isclose(top[token], value, abs_tol=1e-6)
        assert value >= max(top.values()) - 1e-6  # greedy: the sampled token is the most likely
    assert sum(math.exp(v) for v in lp["top_logprobs"][0].values()) <= 1 + 1e-4


def test_streamed_logprobs_match_the_collected_ones(client):
    whole = client.post("/v1/completions", json=BODY).json()["choices"][0]["logprobs"]
    with client.stream("POST", "/v1/completions", json={**BODY, "stream": True}) as response:
        events = read_events(response)
    parts = [e["choices"][0]["logprobs"] for e in events if isinstance(e, dict) and e["choices"]]
    parts = [p for p in parts if p is not None]
    merged = {k: [v for p in parts for v in p[k]] for k in whole}
    assert merged["tokens"] == whole["tokens"] and merged["text_offset"] == whole["text_offset"]
    assert all(
        math.isclose(a, b, abs_tol=1e-4)
        for a, b in zip(merged["token_logprobs"], whole["token_logprobs"], strict=True)
    )


def test_no_logprobs_unless_asked_and_bad_values_refused(client):
    plain = client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2}).json()
    assert plain["choices"][0]["logprobs"] is None
    bad = client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2, "logprobs": 21})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "logprobs"
    chat = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "logprobs": True}
    )
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "logprobs"

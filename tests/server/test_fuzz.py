"""Schema fuzzing with hypothesis: whatever the body, the server answers (no hang) and never with a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(180)

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def field(valid: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(valid, junk)


def _short_or_invalid(v: object) -> bool:
    if isinstance(v, (int, float)):
        return v <= 4 or v > 10**6
    return v is not None


# max_tokens is always sent, small or invalid, so accepted requests stay short.
MAX_TOKENS = st.one_of(st.integers(-2, 4), junk.filter(_short_or_invalid))
COMMON = {
    "model": field(st.sampled_from(["tiny", "other"])),
    "temperature": field(st.floats(-1, 3)),
    "top_p": field(st.floats(-0.5, 1.5)),
    "top_k": field(st.integers(-3, 300)),
    "seed": field(st.integers(-1, 2**64)),
    "stop": field(st.lists(st.text(max_size=3), max_size=3) | st.text(max_size=3)),
    "stop_token_ids": field(st.lists(st.integers(-5, 300), max_size=3)),
    "ignore_eos": field(st.booleans()),
    "min_tokens": field(st.integers(-1, 4)),
    "n": field(st.integers(0, 3)),
    "stream": field(st.booleans()),
    "stream_options": field(st.fixed_dictionaries({"include_usage": st.booleans()})),
    "return_token_ids": field(st.booleans()),
}
message = st.fixed_dictionaries(
    {
        "role": field(st.sampled_from(["system", "user", "assistant", "wizard"])),
        "content": field(st.text(max_size=20)),
    }
)
completion_body = st.fixed_dictionaries(
    {
        "prompt": field(st.text(max_size=30) | st.lists(st.integers(-3, 400), max_size=20)),
        "max_tokens": MAX_TOKENS,
    },
    optional=COMMON,
)
chat_body = st.fixed_dictionaries(
    {"messages": field(st.lists(message, max_size=3)), "max_tokens": MAX_TOKENS}, optional=COMMON
)


def check(client: httpx.Client, path: str, content: bytes) -> None:
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code < 500, (content, response.text)
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.endswith("data: [DONE]\n\n")
    else:
        assert response.json()["choices"]


@pytest.fixture(scope="module")
def fuzz_client(reference_server):
    with httpx.Client(base_url=reference_server.url, timeout=30) as client:
        yield client


@FUZZ
@given(body=completion_body)
def test_completions_schema(fuzz_client, body):
    check(fuzz_client, "/v1/completions", json.dumps(body).encode())


@FUZZ
@given(body=chat_body)
def test_chat_schema(fuzz_client, body):
    check(fuzz_client, "/v1/chat/completions", json.dumps(body).encode())


@FUZZ
@given(raw=st.binary(max_size=64) | junk.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies(fuzz_client, raw):
    for path in ("/v1/completions", "/v1/chat/completions"):
        check(fuzz_client, path, raw)

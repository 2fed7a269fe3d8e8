"""Bad input to the server: fuzzing from its OpenAPI document, hostile bodies, slow clients.

tests/server covers the documented error paths one by one (400/413/422 shapes); this file throws
generated and hostile input at the whole API and checks the server's invariants afterwards.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability.helpers import metric_values, wait_until
from tests.support.servers import start_reference_server

# Fields whose legal values make the engine generate a lot: kept small (or illegal) so a fuzz
# example costs milliseconds of generation, not minutes.
BOUNDED_INTS = {"max_tokens", "max_completion_tokens", "min_tokens"}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


# Never None for these: a missing max_tokens on chat means "up to max_model_len", minutes on a CPU.
BOUNDED = st.one_of(
    st.integers(-3, 4),
    st.sampled_from([2**64, 10**9, -(2**63), "four", "", True]),
    st.floats(-1, 4.5, allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def from_schema(doc: dict, schema: dict, valid: bool, name: str = "", depth: int = 0) -> st.SearchStrategy:
    """A hypothesis strategy for values of an OpenAPI/JSON schema: schema-valid ones when `valid`,
    otherwise wrong-typed, out-of-range and unknown values mixed in at every level."""
    schema = _resolve(doc, schema)
    wrong = st.nothing() if valid else JSON_VALUES
    if name in BOUNDED_INTS:
        return st.integers(0, 4) if valid else BOUNDED
    if depth > 4:
        return st.none() if valid else wrong
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(doc, s, valid, name, depth + 1) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | wrong
    if "const" in schema:
        return st.just(schema["const"]) | wrong
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", [])) | (BOUNDED_INTS.intersection(props) - {"min_tokens"})
        fields = {k: from_schema(doc, v, valid, k, depth + 1) for k, v in props.items()}
        objects = st.fixed_dictionaries(
            {k: fields[k] for k in props if k in required},
            optional={k: fields[k] for k in props if k not in required},
        )
        return objects if valid else objects | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=3)
    if kind == "array":
        items = from_schema(doc, schema.get("items", {}), valid, name, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=4) | wrong
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if valid:
            return st.integers(lo if lo is not None else -1000, hi if hi is not None else 1000)
        return st.integers((lo or 0) - 2**64, (hi or 0) + 2**64) | wrong
    if kind == "number":
        if valid:
            lo, hi = schema.get("minimum", schema.get("exclusiveMinimum", -1e6)), schema.get("maximum", 1e6)
            exclude = "exclusiveMinimum" in schema
            return st.floats(lo, hi, exclude_min=exclude, allow_nan=False)
        return st.floats(allow_nan=True, allow_infinity=True) | wrong
    if kind == "string":
        return st.text(max_size=40) | wrong
    if kind == "boolean":
        return st.booleans() | wrong
    return st.none() if valid else wrong


def _post_routes(doc: dict) -> list[tuple[str, dict]]:
    routes = []
    for path, ops in doc["paths"].items():
        body = ops.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            routes.append((path, body["schema"]))
    return routes


def _assert_idle(url: str) -> None:
    wait_until(
        lambda: (
            (m := metric_values(url))["vllm:kv_cache_usage_perc"] == 0
            and m["vllm:num_requests_running"] == 0
            and m["vllm:num_requests_waiting"] == 0
        ),
        60,
        "an idle engine (KV usage 0, nothing running or waiting)",
    )


def _fuzz_route(http: httpx.Client, path: str, bodies: st.SearchStrategy, seen: dict[int, int]) -> None:
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failing example is reported as found
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies)
    def hit(body: Any) -> None:
        content = json.dumps(body, allow_nan=True)
        r = http.post(path, content=content, headers={"content-type": "application/json"})
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (path, body, r.status_code, r.text[:500])

    hit()


@pytest.mark.timeout(240)
def test_fuzz_every_route_from_the_openapi_document(shared_server, figures):
    """Injects hypothesis-generated bodies derived from each POST route's schema in /openapi.json (valid
    values, wrong types, missing required fields, unknown fields, out-of-range numbers, non-finite
    floats, token ids outside the vocabulary), streamed and not; must hold: no 5xx, every request
    answered within 60 s, the server healthy and its engine idle with all KV blocks free afterwards."""
    url = shared_server.url
    headers = {"Authorization": f"Bearer {shared_server.api_key}"}
    doc = httpx.get(f"{url}/openapi.json", timeout=10).json()
    routes = _post_routes(doc)
    assert {p for p, _ in routes} >= {"/v1/completions", "/v1/chat/completions"}
    seen: dict[int, int] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for path, schema in routes:
            bodies = from_schema(doc, schema, valid=True) | from_schema(doc, schema, valid=False)
            _fuzz_route(http, path, bodies, seen)
    figures.requests += sum(seen.values())
    figures.faults += sum(n for code, n in seen.items() if code >= 400)
    figures.notes.append("status counts " + ", ".join(f"{c}: {n}" for c, n in sorted(seen.items())))
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    _assert_idle(url)


HOSTILE = {
    "not JSON": b"{'model': 'tiny'",
    "invalid UTF-8": b'{"model": "tiny", "prompt": "\xff\xfe\xfa"}',
    "JSON array": b"[1, 2, 3]",
    "JSON null": b"null",
    "deeply nested": b"[" * 50_000 + b"]" * 50_000,
    "huge integer": b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}",
    "NaN temperature": b'{"prompt": "hi", "max_tokens": 2, "temperature": NaN}',
    "empty body": b"",
}


@pytest.mark.timeout(120)
def test_hostile_bodies_and_chunked_oversize(shared_server, figures):
    """Injects malformed JSON, invalid UTF-8, deeply nested arrays (50,000 levels), a 5,000-digit
    integer, NaN, an empty body, and a 2 MiB body sent chunked with no Content-Length; must hold:
    each answered 4xx in OpenAI's error shape (413 for the oversize), and the server stays healthy."""
    headers = {"Authorization": f"Bearer {shared_server.api_key}", "content-type": "application/json"}
    with httpx.Client(base_url=shared_server.url, headers=headers, timeout=60) as http:
        for label, body in HOSTILE.items():
            for path in ("/v1/completions", "/v1/chat/completions"):
                r = http.post(path, content=body)
                figures.requests += 1
                figures.faults += 1
                assert 400 <= r.status_code < 500, (label, path, r.status_code, r.text[:300])
                assert "message" in r.json()["error"], (label, r.text[:300])

        def chunks():
            piece = b" " * 65536
            yield b'{"model": "tiny", "prompt": "'
            for _ in range(32):
                yield piece
            yield b'"}'

        r = http.post("/v1/completions", content=chunks())
        figures.requests += 1
        figures.faults += 1
        assert r.status_code == 413, r.text[:300]
        assert r.json()["error"]["code"] is not None
    assert httpx.get(f"{shared_server.url}/health", timeout=10).status_code == 200


def _dribble(port: int, n: int) -> list[socket.socket]:
    """Open n connections that send the start of a request and then stall (slow-loris)."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n")
        socks.append(sock)
    return socks


@pytest.mark.timeout(120)
def test_slow_clients_do_not_starve_others(shared_server, figures):
    """Injects 64 slow-loris connections (headers never finished) held open; must hold: meanwhile
    /health and a real completion from a well-behaved client are served normally."""
    socks = _dribble(shared_server.port, 64)
    try:
        figures.faults += len(socks)
        headers = {"Authorization": f"Bearer {shared_server.api_key}"}
        assert httpx.get(f"{shared_server.url}/health", timeout=30).status_code == 200
        body = {"model": "tiny", "prompt": "hello", "max_tokens": 2}
        r = httpx.post(f"{shared_server.url}/v1/completions", json=body, headers=headers, timeout=60)
        assert r.status_code == 200
        figures.requests += 2
    finally:
        for sock in socks:
            sock.close()


def _until_all_closed(socks: list[socket.socket], limit_s: float, every_s: float) -> int:
    """Send one more byte on each connection every `every_s` until the server has closed them all or
    `limit_s` passed; returns how many are still open."""
    start = time.monotonic()
    closed: set[int] = set()
    while time.monotonic() - start < limit_s and len(closed) < len(socks):
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            try:
                sock.sendall(b"X")
                sock.settimeout(0.1)
                if sock.recv(1) == b"":
                    closed.add(i)
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed.add(i)
        time.sleep(every_s)
    return len(socks) - len(closed)


@pytest.mark.timeout(120)
def test_slow_clients_are_disconnected(figures):
    """Injects 8 slow-loris clients that dribble one header byte every 0.5 s into a server started
    with --header-timeout 2; must hold: the server closes every one of them within 15 s, so slow
    clients cannot hold sockets and memory without bound, and it still serves /health afterwards."""
    with start_reference_server("--header-timeout", "2", "--body-timeout", "2") as server:
        socks = _dribble(server.port, 8)
        figures.faults += len(socks)
        try:
            assert _until_all_closed(socks, 15, 0.5) == 0
        finally:
            for sock in socks:
                sock.close()
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
        figures.requests += 1


@pytest.mark.soak
@pytest.mark.timeout(150)
def test_slow_clients_are_disconnected_with_default_timeouts(shared_server, figures):
    """Soak: injects slow-loris clients that send one header byte every 5 s into a server with the
    shipped timeouts; must hold: each connection is closed within 65 s (nginx's client_header_timeout
    is 60 s)."""
    socks = _dribble(shared_server.port, 4)
    figures.faults += len(socks)
    try:
        still_open = _until_all_closed(socks, 65, 5)
        assert still_open == 0, f"{still_open} slow connections still open after 65 s"
    finally:
        for sock in socks:
            sock.close()

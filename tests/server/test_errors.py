"""Every error path answers in OpenAI's shape with a precise message (guarded server: API key on)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from reference_server.server.auth import BearerAuthMiddleware, bearer_matches
from reference_server.server.errors import install_error_handlers
from tests.server.conftest import API_KEY, MAX_BODY_BYTES

pytestmark = pytest.mark.timeout(120)


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


def test_auth_required_everywhere_with_protect_metrics(guarded_server):
    url, good = guarded_server.url, {"Authorization": f"Bearer {API_KEY}"}
    err = error_of(httpx.get(url + "/v1/models"), 401)
    assert err["type"] == "authentication_error" and "Bearer" in err["message"]
    error_of(httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
    error_of(httpx.get(url + "/v1/models", headers={"Authorization": f"Basic {API_KEY}"}), 401)
    error_of(httpx.post(url + "/v1/completions", json={"prompt": "x"}), 401)
    error_of(httpx.get(url + "/health"), 401)
    error_of(httpx.get(url + "/metrics"), 401)
    for path in ("/v1/models", "/health", "/metrics"):
        assert httpx.get(url + path, headers=good).status_code == 200, path


@pytest.mark.parametrize("protect", [False, True])
def test_which_paths_need_the_key(protect):
    guard = BearerAuthMiddleware(app=None, api_key=API_KEY, protect_metrics=protect)
    assert guard._protected("/v1/completions") and guard._protected("/v1/models")
    assert guard._protected("/health") is protect and guard._protected("/metrics") is protect
    assert not guard._protected("/openapi.json")
    assert bearer_matches(f"Bearer {API_KEY}".encode(), API_KEY.encode())
    assert bearer_matches(f"bearer {API_KEY}".encode(), API_KEY.encode())
    assert not bearer_matches(f"Bearer {API_KEY}x".encode(), API_KEY.encode())
    assert not bearer_matches(None, API_KEY.encode())


def test_unknown_model(guarded_client):
    err = error_of(guarded_client.post("/v1/completions", json={"model": "gpt-9", "prompt": "x"}), 400)
    assert err["param"] == "model" and err["code"] == "model_not_found" and "'tiny'" in err["message"]


def test_context_length_names_both_numbers(guarded_client):
    max_len = guarded_client.get("/v1/models").json()["data"][0]["max_model_len"]
    resp = guarded_client.post("/v1/completions", json={"prompt": [1, 2, 3], "max_tokens": max_len})
    err = error_of(resp, 400)
    assert err["param"] == "max_tokens" and err["code"] == "context_length_exceeded"
    assert str(max_len) in err["message"] and str(max_len + 3) in err["message"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"prompt": "x", "temperature": "hot"}, "temperature", "valid number"),
        ({"prompt": "x", "top_p": 0}, "top_p", "greater than 0"),
        ({"prompt": "x", "n": 2}, "n", "less than or equal to 1"),
        ({"max_tokens": 2}, "prompt", "Field required"),
        ({"prompt": [1, 999999]}, "prompt", "out of the vocabulary"),
        ({"prompt": []}, "prompt", "empty"),
        ({"prompt": ["a", "b"]}, "prompt", "one prompt per request"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens", "max_tokens"),
        ({"prompt": "x", "min_tokens": 9, "max_tokens": 2}, "min_tokens", "min_tokens"),
        ({"prompt": "x", "echo": True}, "echo", "not supported"),
    ],
)
def test_invalid_completion_parameters(guarded_client, body, param, fragment):
    err = error_of(guarded_client.post("/v1/completions", json=body), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param and fragment in err["message"]


def test_invalid_chat_requests(guarded_client):
    err = error_of(guarded_client.post("/v1/chat/completions", json={"messages": []}), 400)
    assert err["param"] == "messages"
    bad_role = {"messages": [{"role": "wizard", "content": "hi"}]}
    assert (
        error_of(guarded_client.post("/v1/chat/completions", json=bad_role), 400)["param"]
        == "messages.0.role"
    )


def test_malformed_json_and_wrong_body_type(guarded_client):
    headers = {"content-type": "application/json"}
    err = error_of(guarded_client.post("/v1/completions", content=b'{"prompt": ', headers=headers), 400)
    assert "not valid JSON" in err["message"] and "character" in err["message"]
    error_of(guarded_client.post("/v1/completions", json=["not", "an", "object"]), 400)


def test_body_over_the_limit(guarded_client):
    big = {"prompt": "x" * (MAX_BODY_BYTES + 10)}
    err = error_of(guarded_client.post("/v1/completions", json=big), 413)
    assert err["code"] == "request_too_large" and str(MAX_BODY_BYTES) in err["message"]

    def chunked():  # no Content-Length: counted while it arrives
        yield b'{"prompt": "'
        yield b"y" * (MAX_BODY_BYTES + 10)
        yield b'"}'

    resp = guarded_client.post(
        "/v1/completions", content=chunked(), headers={"content-type": "application/json"}
    )
    assert error_of(resp, 413)["code"] == "request_too_large"


def test_unknown_route_and_method(guarded_client):
    assert error_of(guarded_client.get("/v1/nothing-here"), 404)["type"] == "not_found_error"
    error_of(guarded_client.get("/v1/completions"), 405)


def test_unexpected_exception_is_a_500_in_the_same_shape():
    app = FastAPI()
    install_error_handlers(app, 1024)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.get("/boom")

    import asyncio

    err = error_of(asyncio.run(call()), 500)
    assert err["type"] == "server_error" and "RuntimeError" in err["message"]

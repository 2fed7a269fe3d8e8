"""Slow clients (slow-loris): a request must arrive within --header-timeout / --body-timeout or the
server closes the connection; once a request has arrived, its response and keep-alive are untouched."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.support.servers import start_reference_server

TIMEOUT_S = 1.0
BOUND_S = 30.0  # generous: the server must close well within this (it should take about TIMEOUT_S)


@pytest.fixture(scope="module")
def strict_server():
    with start_reference_server(
        "--header-timeout", str(TIMEOUT_S), "--body-timeout", str(TIMEOUT_S)
    ) as server:
        yield server


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=BOUND_S)


def _closed_by_server(sock: socket.socket, dribble: bytes = b"") -> bool:
    """Keep sending `dribble` (one byte a few times a second) until the server closes, or BOUND_S."""
    deadline = time.monotonic() + BOUND_S
    sock.settimeout(0.25)
    while time.monotonic() < deadline:
        try:
            if dribble:
                sock.sendall(dribble[:1])
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:  # reset by the server
            return True
        if data == b"":
            return True
    return False


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "opening, dribble",
    [
        (b"", b""),  # connects and sends nothing
        (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n", b"X"),  # head never ends
        (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", b""),  # body stalls
    ],
    ids=["silent", "slow-head", "stalled-body"],
)
def test_slow_requests_are_closed(strict_server, opening, dribble):
    with _connect(strict_server) as sock:
        sock.sendall(opening)
        assert _closed_by_server(sock, dribble), f"connection still open after {BOUND_S}s"
    assert httpx.get(f"{strict_server.url}/health", timeout=30).status_code == 200  # others unaffected


@pytest.mark.timeout(120)
def test_received_requests_keep_their_connection_past_the_timeouts(strict_server):
    body = {"model": "tiny", "prompt": "hello", "max_tokens": 4, "stream": True}
    with httpx.Client(base_url=strict_server.url, timeout=60) as client:
        with client.stream("POST", "/v1/completions", json=body) as resp:
            assert resp.status_code == 200
            lines = []
            for line in resp.iter_lines():
                if not lines:
                    time.sleep(3 * TIMEOUT_S)  # a slow reader of the response is not a slow sender
                lines.append(line)
        assert "data: [DONE]" in lines
        finish = [json.loads(x[6:])["choices"][0]["finish_reason"] for x in lines if x.startswith("data: {")]
        assert finish[-1] == "length"
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(strict_server) as sock:  # one raw connection: it must be the same one both times
        for _ in range(2):
            sock.sendall(request)
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(3 * TIMEOUT_S)  # idle, inside uvicorn's keep-alive (5 s): still served afterwards


def _read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "server closed the connection"
        body += chunk
    return head


@pytest.mark.parametrize("value", ["0", "nan", "inf", "soon"])
def test_bad_timeout_flags_are_usage_errors(value, capsys):
    from reference_server.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--header-timeout", value])
    assert exc.value.code == 2 and "--header-timeout" in capsys.readouterr().err

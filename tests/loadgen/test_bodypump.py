"""The event-loop body reader: every byte in order with its arrival, idle timeout, broken streams."""

from __future__ import annotations

import time

import gevent
import pytest
from gevent.server import StreamServer
from geventhttpclient import HTTPClient

from loadgen import rxtime
from loadgen.bodypump import pump_body

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _serve(script):
    """A loopback server that answers each request with `script(sock)`."""

    def handle(sock, _address):
        buffer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                buffer = buffer[length:]
                if script(sock) == "close":
                    sock.close()
                    return

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    return server


def _post(client: HTTPClient):
    raw = client.post("/v1/completions", body=b"{}")
    rxtime.enable(raw._sock)  # kernel stamps where the platform has them, read times otherwise
    return raw


@pytest.mark.timeout(30)
def test_every_piece_arrives_in_order_and_the_connection_is_reused():
    events = [b"data: %d\n\n" % i for i in range(5)]

    def script(sock):
        sock.sendall(HEAD)
        for event in events:
            sock.sendall(_chunk(event))
            gevent.sleep(0.03)
        sock.sendall(b"0\r\n\r\n")

    server = _serve(script)
    client = HTTPClient("127.0.0.1", server.server_port, network_timeout=5, concurrency=1)
    try:
        for _ in range(2):  # the second request runs on the connection the first left complete
            got: list[tuple[bytes, float]] = []
            start = time.perf_counter()
            raw = _post(client)
            body = bytes(raw._body_buffer)
            del raw._body_buffer[:]
            pump_body(raw, lambda data, arrived, got=got: got.append((data, arrived)))
            assert raw.message_complete
            assert body + b"".join(data for data, _ in got) == b"".join(events)
            stamps = [arrived for _, arrived in got]
            assert stamps == sorted(stamps) and start <= stamps[0] <= stamps[-1] <= time.perf_counter()
            assert stamps[-1] - stamps[0] >= 0.02 * (len(stamps) - 1)  # read as they came (30 ms apart)
            raw.release()
    finally:
        client.close()
        server.stop()


@pytest.mark.timeout(30)
def test_a_stream_that_goes_silent_times_out_within_two_periods():
    def script(sock):
        sock.sendall(HEAD + _chunk(b"data: 1\n\n"))
        gevent.sleep(5)

    server = _serve(script)
    client = HTTPClient("127.0.0.1", server.server_port, network_timeout=0.3, concurrency=1)
    try:
        raw = _post(client)
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            pump_body(raw, lambda data, arrived: None)
        assert 0.3 <= time.perf_counter() - start <= 0.3 * 2 + 0.2
    finally:
        client.close()
        server.stop(timeout=0)


@pytest.mark.timeout(30)
def test_a_server_that_closes_mid_body_and_a_failing_sink_both_raise():
    def script(sock):
        sock.sendall(HEAD + _chunk(b"data: 1\n\n"))
        gevent.sleep(0.05)
        sock.sendall(_chunk(b"data: 2\n\n"))
        return "close"

    server = _serve(script)
    client = HTTPClient("127.0.0.1", server.server_port, network_timeout=5, concurrency=1)
    try:
        raw = _post(client)
        with pytest.raises(Exception):  # noqa: B017 - geventhttpclient's parse error, whatever its class
            pump_body(raw, lambda data, arrived: None)
        assert not raw.message_complete

        def refuse(data: bytes, arrived: float) -> None:
            raise ValueError("sink refused")

        raw = _post(client)
        with pytest.raises(ValueError, match="sink refused"):
            pump_body(raw, refuse)
    finally:
        client.close()
        server.stop(timeout=0)

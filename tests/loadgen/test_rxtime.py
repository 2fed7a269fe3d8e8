"""Kernel receive timestamps: a chunk read late is still stamped when it arrived."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from loadgen import rxtime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_TIMESTAMPNS is Linux-only")
def test_arrival_is_the_kernel_stamp_not_the_read_time():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        assert rxtime.enable(client)
        # Linux turns receive timestamping on for the whole stack through deferred work, so a packet
        # that arrives right after the first socket asks for it may be stamped only when read: let one
        # packet through first (a real run's first chunk is affected the same way, then never again)
        peer.sendall(b": warm-up\n\n")
        time.sleep(0.05)
        assert rxtime.recv(client, 1024)[0] == b": warm-up\n\n"
        before = time.perf_counter()
        peer.sendall(b"data: [DONE]\n\n")
        after = time.perf_counter()
        time.sleep(0.2)  # the reader is busy elsewhere; the bytes wait in the kernel
        data, arrived = rxtime.recv(client, 1024)
        assert data == b"data: [DONE]\n\n"
        assert before - 0.01 <= arrived <= after + 0.01  # stamped on arrival, ~0.2 s before the read
    finally:
        for s in (client, peer, server):
            s.close()


def test_tls_sockets_fall_back_to_read_time_stamps():
    import ssl

    plain = socket.socket()
    tls = ssl.create_default_context().wrap_socket(
        socket.socket(), server_hostname="x", do_handshake_on_connect=False
    )
    try:
        assert not rxtime.enable(tls)  # recvmsg would bypass TLS (and SSLSocket refuses it)
        assert rxtime.enable(plain) == sys.platform.startswith("linux")
    finally:
        tls.close()
        plain.close()

"""Kernel receive timestamps for stream reads (Linux SO_TIMESTAMPNS).

A chunk's arrival stamped in user space is late by however long the generator took to get to it
(event-loop backlog, a busy or oversubscribed CPU). Measured on a 2-core machine at load ~8, that
added ~4 ms to TTFT p50 at 64 streams. With SO_TIMESTAMPNS the kernel stamps each packet as it is
received and recvmsg hands the stamp over with the bytes, so chunk times no longer depend on when
the greenlet ran. Where the option or recvmsg is unavailable the caller falls back to user-space
stamps. TOLLGATE_USERSPACE_TIMESTAMPS=1 forces that fallback (the benchmark's baseline).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; SCM_TIMESTAMPNS has the same value
_TIMESPEC = struct.Struct("qq")


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to stamp received packets on this socket; False where unsupported."""
    if os.environ.get("TOLLGATE_USERSPACE_TIMESTAMPS") == "1":
        return False
    if not sys.platform.startswith("linux") or not hasattr(sock, "recvmsg"):
        return False
    if hasattr(
        sock, "do_handshake"
    ):  # TLS (stdlib or gevent): the bytes come out of the TLS layer, no recvmsg
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


ANCILLARY_BYTES = 64  # room for one SCM_TIMESTAMPNS control message


def recv(sock: socket.socket, size: int) -> tuple[bytes, float]:
    """Receive up to `size` bytes; return them with their arrival as a perf_counter() time."""
    data, ancillary, _, _ = sock.recvmsg(size, ANCILLARY_BYTES)
    return data, arrival(ancillary)


def arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The kernel's receive stamp in recvmsg's ancillary data as a perf_counter() time; now without one."""
    now_perf, now_unix = time.perf_counter(), time.time()
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanos = _TIMESPEC.unpack_from(payload)
            return now_perf - max(0.0, now_unix - (seconds + nanos * 1e-9))
    return now_perf

"""Read a streamed HTTP response body inside the event loop's read callback, with kernel stamps.

Why not the gevent socket's own recv: each of its reads of a streamed chunk is a failed non-blocking
recv, a gevent Timeout built and armed for the wait, and two greenlet switches (user -> hub -> user).
At the chunk rates a generator must carry (one chunk per write, 40k/s) that machinery was the largest
share of the client's CPU per chunk: a bare gevent client reading 64 streams cost 8-9.5 us per chunk
that way and 5-7 us from the read callback. Here the
hub calls `_Pump.on_readable` itself when the socket has bytes: one recvmsg, geventhttpclient's
parser for the HTTP framing (chunked encoding), and the caller's sink, all without leaving the hub;
the user greenlet is switched back to once, when the body has ended or failed.

The socket's timeout stays an idle timeout, as it was: a timer repeating every `timeout` seconds
fails the read when a whole period went by without a read, so a silent stream fails after one to
two periods (one timer per response instead of one Timeout per read).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from gevent.hub import Waiter, get_hub

from loadgen import rxtime

RECV_BYTES = 65536

Sink = Callable[[bytes, float], None]


def pump_body(raw: Any, sink: Sink) -> None:
    """Feed the rest of geventhttpclient response `raw`'s body to `sink(bytes, arrival perf time)`.

    `raw._sock` must have kernel receive stamps enabled (loadgen.rxtime.enable). Returns when the
    body is complete or the peer closed; raises what the read, the parser or the sink raised (the
    response is then released, which closes its connection: the body was not read to the end)."""
    sock = raw._sock
    pump = _Pump(raw, sock._sock, sock.fileno(), sock.gettimeout(), sink)
    error = pump.run()
    if error is not None:
        raw.release()
        raise error


class _Pump:
    __slots__ = ("raw", "os_sock", "sink", "waiter", "watcher", "timer", "reads", "reads_at_tick", "ended")

    def __init__(
        self, raw: Any, os_sock: socket.socket, fileno: int, timeout: float | None, sink: Sink
    ) -> None:
        hub = get_hub()
        self.raw = raw
        self.os_sock = os_sock  # the non-blocking socket under gevent's wrapper
        self.sink = sink
        self.waiter = Waiter(hub)
        self.watcher = hub.loop.io(fileno, 1)
        self.timer = hub.loop.timer(timeout, timeout) if timeout else None
        self.reads = self.reads_at_tick = 0
        self.ended = False

    def run(self) -> BaseException | None:
        self.watcher.start(self.on_readable)
        if self.timer is not None:
            self.timer.start(self.on_tick)
        try:
            return self.waiter.get()
        finally:  # also when the run kills this user while it waits (GreenletExit)
            self.ended = True
            self.watcher.close()
            if self.timer is not None:
                self.timer.close()

    def on_readable(self) -> None:
        try:
            data, arrived = rxtime.recv(self.os_sock, RECV_BYTES)
        except BlockingIOError:
            return
        except Exception as exc:
            self._end(exc)
            return
        try:
            raw = self.raw
            raw.feed(data)
            self.reads += 1
            buffer = raw._body_buffer
            if buffer:
                body = bytes(buffer)
                del buffer[:]
                self.sink(body, arrived)
            if raw.message_complete or not data:
                self._end(None)
        except Exception as exc:  # a callback of the hub must not raise: hand it to the user
            self._end(exc)

    def on_tick(self) -> None:
        if self.reads == self.reads_at_tick:
            self._end(TimeoutError("timed out"))
        self.reads_at_tick = self.reads

    def _end(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.watcher.stop()
        if self.timer is not None:
            self.timer.stop()
        self.waiter.switch(error)

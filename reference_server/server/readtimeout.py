"""Bounded time for a client to send its request (slow-loris defence).

uvicorn has a keep-alive timeout (idle between requests) but none while a request is being read:
a client that sends one header byte every few seconds, or stalls in the middle of its body, holds
its connection (and its buffers) forever. nginx bounds both (client_header_timeout,
client_body_timeout); this adds the same to uvicorn's own HTTP protocol classes through
`uvicorn.Config(http=...)`:

- head: from the connection's first moment (or the first byte of a keep-alive request) the whole
  request head must arrive within `header_timeout_s`;
- body: while the body is still arriving, no gap between two reads may exceed `body_timeout_s`.

The timer only covers the client sending its request: once the request is fully received (while
the app runs and streams its response, however long) nothing is armed. On expiry the connection
is closed; an app still reading the body sees `http.disconnect`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("reference_server.http")


class RequestReadTimeouts:
    """Mixin for uvicorn's H11Protocol / HttpToolsProtocol (both keep `self.cycle`, the current
    request's RequestResponseCycle, with `more_body` and `response_complete`)."""

    header_timeout_s = 30.0
    body_timeout_s = 30.0
    _timer: asyncio.TimerHandle | None = None
    _phase = ""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _watch(self) -> None:
        """Re-judge after every read: which part of a request is the client still sending?"""
        cycle = self.cycle  # type: ignore[attr-defined]
        if cycle is None or cycle.response_complete:  # (the rest of) a request head is awaited
            if self._phase != "head":  # the head's budget is a total: more head bytes do not extend it
                self._arm("head", self.header_timeout_s)
        elif cycle.more_body:  # the body is arriving: each read restarts the gap timer
            self._arm("body", self.body_timeout_s)
        else:  # the request is complete: the response takes the time it takes
            self._disarm()

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, ""

    def _expired(self) -> None:
        flow = getattr(self, "flow", None)
        if self._phase == "body" and flow is not None and flow.read_paused:
            self._arm(
                "body", self.body_timeout_s
            )  # uvicorn stopped reading (the app is slow): not the client
            return
        transport = self.transport  # type: ignore[attr-defined]
        limit = self.header_timeout_s if self._phase == "head" else self.body_timeout_s
        log.info("closing a connection whose request %s took over %gs to arrive", self._phase, limit)
        self._timer, self._phase = None, ""
        if transport is not None and not transport.is_closing():
            transport.close()


def protocol_class(header_timeout_s: float, body_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's own choice of HTTP protocol ("auto": httptools when installed, else h11) with the
    request read timeouts added."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    attrs = {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s}
    return type(f"Timed{base.__name__}", (RequestReadTimeouts, base), attrs)

"""413 in OpenAI's error shape for bodies whose declared Content-Length is over the limit.

FastAPI's own limit (`FastAPI(max_body_size=...)`) does the counting, including chunked bodies,
and those errors reach our handlers. But when the declared Content-Length is already too large,
Starlette's limiter replaces whatever response the app sends with a plain-text 413, so this
middleware answers that case first, before any byte of the body is read.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from reference_server.server.errors import body_too_large_message, error_bytes, send_error


class DeclaredLengthGuard:
    def __init__(
        self, app: ASGIApp, max_bytes: int, on_reject: Callable[[str], None] = lambda r: None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = (
            dict(scope.get("headers") or ()).get(b"content-length") if scope["type"] == "http" else None
        )
        if declared is None or not declared.isdigit() or int(declared) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        self.on_reject("body_too_large")
        body = error_bytes(413, body_too_large_message(self.max_bytes), None, "request_too_large")
        await send_error(send, 413, body, [(b"connection", b"close")])

"""Bearer-token authentication as a pure ASGI middleware.

With an API key configured, every /v1/* route (and /health, /metrics when protect_metrics is
set) requires `Authorization: Bearer <key>`; anything else is answered 401 before the body is
read. Keys are compared in constant time (hmac.compare_digest) so response timing does not
reveal how much of a guessed key was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from reference_server.server.errors import error_bytes, send_error

OPEN_PATHS = ("/health", "/metrics")


def bearer_matches(header: bytes | None, key: bytes) -> bool:
    """True when `header` is exactly `Bearer <key>` (scheme case-insensitive)."""
    if not header:
        return False
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(token.strip(), key)


class BearerAuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        api_key: str,
        protect_metrics: bool = False,
        on_reject: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.app = app
        self.on_reject = on_reject
        self.key = api_key.encode()
        self.protect_metrics = protect_metrics

    def _protected(self, path: str) -> bool:
        if path.startswith("/v1/") or path == "/v1":
            return True
        return self.protect_metrics and path in OPEN_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._protected(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization")
        if bearer_matches(header, self.key):
            await self.app(scope, receive, send)
            return
        self.on_reject("unauthorized")
        message = (
            "missing API key: send 'Authorization: Bearer <key>'"
            if not header
            else "invalid API key in the Authorization header"
        )
        body = error_bytes(401, message, None, "invalid_api_key")
        await send_error(send, 401, body, [(b"www-authenticate", b'Bearer realm="tollgate"')])

"""Stop a run whose first requests all fail with the same client error (4xx).

Such a run measures nothing but the rejection: vLLM without a chat template answers every chat
request 400, and a 30 s run sent 14,996 identical 400s. Each generator process watches its first
`EARLY_STOP_REQUESTS` finished requests; when every one failed with the same 4xx status and the same
reason, the run stops, its summary says why (`stopped_early`), and `tollgate load` prints the
server's message and exits 2. 408 and 429 are left alone: they are load, not a wrong request.
"""

from __future__ import annotations

from typing import Any

from loadgen.timeline import RequestRecord

EARLY_STOP_REQUESTS = 8
TRANSIENT = (408, 429)

_HINTS = {
    400: "the server rejects the request as sent: read its message above; for chat, the model needs a chat "
    "template (or use --endpoint completions); check --model, --input-tokens and --output-tokens against "
    "the model's context",
    401: "pass --api-key (or set OPENAI_API_KEY) with a key the server accepts",
    403: "the key is not allowed to use this model or endpoint: pass another --api-key or --model",
    404: "check --url (base URL, without /v1), --endpoint and --model (GET /v1/models lists the served names)",
    413: "the request body is too large for the server: lower --input-tokens or raise the server's limit",
    422: "the server rejects the request's fields: read its message above; check --model and the token flags",
}


def hint(status: int) -> str:
    return _HINTS.get(status, "read the server's message above and fix the request or the server")


class EarlyStop:
    """Watches one process's first finished requests; `observe` returns the verdict once, else None."""

    def __init__(self, needed: int = EARLY_STOP_REQUESTS) -> None:
        self.needed = needed
        self.seen = 0
        self._first: RequestRecord | None = None
        self.decided = False

    def observe(self, record: RequestRecord, url: str, path: str) -> dict[str, Any] | None:
        if self.decided:
            return None
        failed_4xx = not record.ok and 400 <= record.status < 500 and record.status not in TRANSIENT
        first = self._first or record
        if not failed_4xx or (record.status, record.error) != (first.status, first.error):
            self.decided = True  # a success or a different failure: the run is not uniformly rejected
            return None
        self._first = first
        self.seen += 1
        if self.seen < self.needed:
            return None
        self.decided = True
        return {
            "requests": self.seen,
            "status": first.status,
            "reason": first.error,
            "message": first.detail or first.error,
            "request": f"POST {url}{path}",
            "hint": hint(first.status),
        }


def describe(verdict: dict[str, Any]) -> str:
    """The lines `tollgate load` prints for a run stopped early: what, where, how to fix."""
    return (
        f"tollgate load: stopped early: the first {verdict['requests']} requests all failed with HTTP "
        f"{verdict['status']} from {verdict['request']}\n"
        f"  server said: {verdict['message']}\n"
        f"  fix: {verdict['hint']}"
    )

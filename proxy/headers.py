"""Which headers cross the proxy: everything end-to-end (Authorization included), no hop-by-hop."""

from __future__ import annotations

from collections.abc import Iterable

# RFC 9110 §7.6.1 connection-specific headers, plus the ones httpx/uvicorn set for their own hop.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def upstream_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Client request headers to send upstream; identity encoding so SSE can be read as it comes."""
    kept = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() != "accept-encoding"]
    return [*kept, ("accept-encoding", "identity")]


def client_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Upstream response headers to pass back (the proxy's server frames the body itself)."""
    return {k: v for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding"}

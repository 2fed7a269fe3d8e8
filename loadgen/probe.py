"""What answers at the run's URL, asked once before the run (GET /v1/models); goes into summary.json."""

from __future__ import annotations

from typing import Any


def server_identity(url: str, api_key: str) -> dict[str, Any]:
    """`reachable`, the served `models` and the `http_server` header; `error` when it did not answer."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    info: dict[str, Any] = {"url": url, "reachable": False, "models": []}
    try:
        resp = httpx.get(f"{url}/v1/models", headers=headers, timeout=5.0)
        info["reachable"] = True
        info["http_server"] = resp.headers.get("server", "")
        if resp.status_code == 200:
            info["models"] = [m.get("id") for m in resp.json().get("data", []) if isinstance(m, dict)]
        else:
            info["error"] = f"/v1/models answered HTTP {resp.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info

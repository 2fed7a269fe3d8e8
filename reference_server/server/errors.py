"""Every error leaves the server in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

Validation problems are answered 400 (as OpenAI and vLLM do, rather than FastAPI's 422) with the
offending field in `param` and the reason in `message`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger("tollgate.server")

# status -> OpenAI error type
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


class APIError(Exception):
    """An error answered to the client; raise it anywhere in a request handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def error_bytes(status: int, message: str, param: str | None = None, code: str | None = None) -> bytes:
    """The JSON body for places that answer below FastAPI (the ASGI guard middleware)."""
    return json.dumps(error_body(status, message, param, code)).encode()


def body_too_large_message(max_bytes: int) -> str:
    return (
        f"request body is larger than the server's limit of {max_bytes} bytes; "
        "send a smaller body or raise the limit with `tollgate serve --max-body-bytes N`"
    )


async def send_error(send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]]) -> None:
    """Send a JSON error response from a pure ASGI middleware."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra_headers})
    await send({"type": "http.response.body", "body": body})


def _validation_param(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or None


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """A readable message naming each bad field, and the first field as `param`."""
    problems, first = [], None
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        param = _validation_param(loc)
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", err.get("msg"))
            return f"request body is not valid JSON ({reason} at character {loc[-1]})", None
        if param is None and err.get("type") == "missing":
            return "request body is missing: send a JSON object", None
        first = first or param
        problems.append(f"{param or 'body'}: {err.get('msg')}")
    return "invalid request: " + "; ".join(problems[:8]), first


def install_error_handlers(
    app: FastAPI, max_body_bytes: int, on_reject: Callable[[str], None] = lambda reason: None
) -> None:
    """Answer every error in OpenAI's shape; `on_reject(reason)` counts refused requests."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        on_reject("invalid_request")
        message, param = validation_message(exc)
        return error_response(400, message, param, "invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:  # raised by FastAPI's own body limit (max_body_size)
            on_reject("body_too_large")
            return error_response(413, body_too_large_message(max_body_bytes), None, "request_too_large")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(exc.status_code, str(exc.detail), None, code, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error while serving a request")
        return error_response(500, f"internal server error: {type(exc).__name__}", None, "internal_error")

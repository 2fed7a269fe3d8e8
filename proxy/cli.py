"""`tollgate proxy --upstream URL --listen HOST:PORT --capture FILE`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # proxy.app loads FastAPI
    from proxy.app import ProxySettings


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"'{value}' is not HOST:PORT (for example 127.0.0.1:8100)")
    return host.strip("[]"), int(port)


def _upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not an http(s) URL of the server to relay to (for example http://127.0.0.1:8000)"
        )
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate proxy",
        description="Relay an OpenAI-compatible server (SSE chunk by chunk) and write Tollgate's capture "
        "log for it, so drift works for servers that write none (vLLM, TGI, llama.cpp).",
    )
    p.add_argument("--upstream", type=_upstream, required=True, help="URL of the server to relay to")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 8100), help="HOST:PORT to listen on")
    p.add_argument("--capture", metavar="FILE", help="append one capture line per finished request here")
    p.add_argument("--capture-text", action="store_true", help="also record raw prompt text (privacy!)")
    p.add_argument("--capture-max-bytes", type=int, help="rotate the capture file beyond this size")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for upstream bytes")
    p.add_argument("--max-connections", type=int, default=1000, help="upstream connection pool size")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return p


def settings_of(args: argparse.Namespace) -> ProxySettings:
    from proxy.app import ProxySettings

    return ProxySettings(
        upstream=args.upstream,
        capture_path=args.capture,
        capture_text=args.capture_text,
        capture_max_bytes=args.capture_max_bytes,
        read_timeout_s=args.timeout,
        max_connections=args.max_connections,
    )


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.capture:
        from tollgate.contracts.capture_log import capture_path_problem

        problem = capture_path_problem(args.capture)
        if problem:
            print(f"tollgate proxy: {problem}", file=sys.stderr)
            return 2
    import uvicorn  # with FastAPI (proxy.app): ~0.8 s of imports that `--help` does not need

    from proxy.app import create_app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_of(args)
    host, port = args.listen
    print(
        f"tollgate proxy: http://{host}:{port} -> {settings.upstream}"
        + (f", capture {settings.capture_path}" if settings.capture_path else ", no capture"),
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=args.log_level, access_log=False)
    return 0

"""Helpers shared by the release tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from tests.support.servers import free_port


def front_door_out(argv: list[str], capsys) -> tuple[int, str, str]:
    """`tollgate ARGV` in this process: (exit code, stdout, stderr); argparse's exit counts as a code."""
    from tollgate.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def front_door(argv: list[str], capsys) -> tuple[int, str]:
    """`tollgate ARGV` in this process: (exit code, stderr)."""
    code, _, err = front_door_out(argv, capsys)
    return code, err


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """An ASGI app served by a real uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)

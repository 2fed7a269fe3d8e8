"""Running the app under uvicorn with a graceful drain on SIGTERM/SIGINT.

uvicorn alone stops listening at the first signal and cancels what is still running after its
timeout. The reference server drains instead: it keeps listening but answers 503 (health and new
requests) while admitted requests finish; at the deadline what is left is aborted in the engine,
so each open stream ends with finish_reason "abort" and [DONE]; then uvicorn stops and the
process exits 0. A second signal stops at once.
"""

from __future__ import annotations

import threading

import uvicorn

from reference_server.server.app import create_app
from reference_server.server.readtimeout import protocol_class
from reference_server.server.state import Phase, ServerContext


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ctx: ServerContext, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.ctx = ctx
        self.drain_timeout_s = drain_timeout_s
        self.drainer: threading.Thread | None = None

    def handle_exit(self, sig: int, frame) -> None:
        if self.drainer is not None or self.ctx.phase is Phase.FAILED:
            super().handle_exit(sig, frame)
            return
        self.ctx.begin_drain()
        self.drainer = threading.Thread(target=self._drain, name="drain", daemon=True)
        self.drainer.start()

    def _drain(self) -> None:
        self.ctx.wait_idle(self.drain_timeout_s)
        if self.ctx.active:
            self.ctx.abort_all()
            self.ctx.wait_idle(5.0)
        self.should_exit = True


def serve(ctx: ServerContext, host: str, port: int, log_level: str = "info") -> bool:
    """Serve until drained or until the engine failed to load (then ctx.error says why).

    Returns False when uvicorn could not start (e.g. the port is taken; uvicorn logged why).
    """
    config = uvicorn.Config(
        create_app(ctx),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http=protocol_class(ctx.settings.header_timeout_s, ctx.settings.body_timeout_s),
        timeout_graceful_shutdown=5.0,  # requests are already finished or aborted by then
    )
    server = DrainingServer(config, ctx, ctx.settings.drain_timeout_s)

    def stop_on_fatal(_: BaseException) -> None:
        server.should_exit = True

    ctx.on_fatal = stop_on_fatal
    try:
        server.run()
    except SystemExit:  # uvicorn exits with its own code (3) when it cannot bind
        return False
    return True

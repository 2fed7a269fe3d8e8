"""Lifecycle of one server: starting -> ready -> draining (or failed), and what it holds.

The engine loads in a background thread while uvicorn already answers, so /health reports
503 "starting" until the model is loaded and the engine loop runs, and 503 "draining" once a
SIGTERM arrived. The request handlers reach everything through the one ServerContext.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reference_server.server.admission import Admission
from reference_server.server.metrics import ServerMetrics
from tollgate.contracts.capture_log import CaptureWriter

log = logging.getLogger("tollgate.server")


class Phase(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


@dataclass
class ServeSettings:
    """Server options (the engine's own options live in EngineConfig)."""

    max_waiting: int = 128
    api_key: str | None = None
    protect_metrics: bool = False
    max_body_bytes: int = 1 << 20
    capture_path: str | None = None
    capture_text: bool = False
    capture_max_bytes: int | None = None
    drain_timeout_s: float = 30.0
    header_timeout_s: float = 30.0  # a client must send its request head within this
    body_timeout_s: float = 30.0  # ... and never pause longer than this while sending its body


@dataclass
class ServerContext:
    settings: ServeSettings
    engine_factory: Callable[[], Any]
    on_fatal: Callable[[BaseException], None] | None = None
    phase: Phase = Phase.STARTING
    engine: Any = None
    metrics: ServerMetrics | None = None
    admission: Admission | None = None
    capture: CaptureWriter | None = None
    error: BaseException | None = None
    active: set[str] = field(default_factory=set)  # request ids admitted and not yet closed
    _loader: threading.Thread | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY and self.engine is not None and self.engine.is_alive()

    @property
    def status(self) -> str:
        """What /health reports: ok, starting, draining, failed or engine_dead (the loop stopped)."""
        if self.ready:
            return "ok"
        return "engine_dead" if self.phase is Phase.READY else self.phase.value

    def reject(self, reason: str) -> None:
        """Count a request refused before it reached the engine (no-op until metrics exist)."""
        if self.metrics is not None:
            self.metrics.reject(reason)

    def start_loading(self) -> None:
        self._loader = threading.Thread(target=self._load, name="engine-loader", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        try:
            engine = self.engine_factory()
            engine.start()
            self.metrics = ServerMetrics(engine.model_name, engine.max_model_len, engine.stats)
            self.admission = Admission(engine.config.max_num_seqs, self.settings.max_waiting)
            if self.settings.capture_path:
                self.capture = CaptureWriter(
                    self.settings.capture_path,
                    include_text=self.settings.capture_text,
                    max_bytes=self.settings.capture_max_bytes,
                    on_drop=self.metrics.capture_dropped.inc,
                )
            self.engine = engine
            if self.phase is Phase.STARTING:
                self.phase = Phase.READY
                log.info("engine ready: model %s, max_model_len %d", engine.model_name, engine.max_model_len)
        except BaseException as exc:  # reported to the CLI, which exits non-zero
            log.error("the engine failed to start: %s", exc, exc_info=not isinstance(exc, ValueError))
            self.error = exc
            self.phase = Phase.FAILED
            if self.on_fatal is not None:
                self.on_fatal(exc)

    def begin_drain(self) -> None:
        if self.phase in (Phase.READY, Phase.STARTING):
            self.phase = Phase.DRAINING

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no admitted request is left (True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.active

    def abort_all(self) -> None:
        """Abort every admitted request (the drain deadline passed); each stream ends with 'abort'."""
        if self.engine is None:
            return
        for request_id in list(self.active):
            self.engine.abort(request_id)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the engine (aborting what is left) and flush the capture log."""
        if self._loader is not None:
            self._loader.join(timeout)
        if self.engine is not None:
            self.engine.shutdown(timeout=timeout)
        if self.capture is not None:
            self.capture.close()

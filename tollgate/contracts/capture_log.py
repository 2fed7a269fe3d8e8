"""Capture log writer: one JSON line per finished request (tollgate/contracts/capture.py).

Shared by every producer of the contract (the reference server natively, `tollgate proxy` in
front of any other server), so each writes the same lines with the same crash-safety. Requests hand records to `CaptureWriter.submit`, which only puts them on a bounded queue and
never waits: a background thread builds the prompt profile, encodes, writes and flushes each
line, so neither hashing long prompts nor a slow disk stalls the engine loop or the event loop. A full queue drops the record and counts it (metric
`tollgate_capture_dropped_records_total`) rather than block serving.

Each line is written with one write() call on a file opened in append mode and flushed at
once, so a crash can at worst leave the last line incomplete; lines already written are never
rewritten. With `max_bytes`, the file is rotated by size: PATH -> PATH.1 -> ... -> PATH.<backups>.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from tollgate.contracts.capture import CAPTURE_SCHEMA_VERSION
from tollgate.contracts.sketch import prompt_profile

log = logging.getLogger("tollgate.capture")

_STOP = object()


def capture_record(
    *,
    request_id: str,
    endpoint: str,
    model: str,
    stream: bool,
    prompt_text: str,
    system_prompt: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    n_messages: int | None,
    finish_reason: str,
    times: Any,
    include_text: bool,
) -> dict[str, Any]:
    """A capture line as a dict.

    `times` has `arrival`, `first_scheduled`, `first_token`, `finished`/`last_token` (unix
    seconds or None): the engine's RequestTimes, or what a proxy observed (None when it never ran).
    """
    arrival = getattr(times, "arrival", None)

    def since_arrival(t: float | None) -> float | None:
        return None if t is None or arrival is None else round(max(0.0, t - arrival), 6)

    finished = getattr(times, "finished", None) or getattr(times, "last_token", None)
    record: dict[str, Any] = {
        "schema_version": CAPTURE_SCHEMA_VERSION,
        "timestamp": float(finished or time.time()),
        "request_id": request_id,
        "endpoint": endpoint,
        "model": model,
        "stream": stream,
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "n_messages": n_messages,
        "finish_reason": finish_reason,
        "queue_s": since_arrival(getattr(times, "first_scheduled", None)),
        "ttft_s": since_arrival(getattr(times, "first_token", None)),
        "e2e_s": since_arrival(finished),
        "prompt_profile": prompt_profile(prompt_text, system_prompt),
    }
    if include_text:
        record["prompt_text"] = prompt_text
    return record


def capture_path_problem(path: str, flag: str = "--capture") -> str | None:
    """Why `path` cannot take a capture log (checked at start-up, before a server binds), else None."""
    target = Path(path)
    if target.is_dir() or path.endswith(("/", os.sep)):
        return f"{flag} {path}: names a directory; give a file path such as {target / 'capture.jsonl'}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab"):
            pass
    except OSError as exc:
        return f"{flag} {path}: cannot open for appending ({exc.strerror}); choose a writable path"
    return None


class CaptureWriter:
    def __init__(
        self,
        path: str | os.PathLike,
        *,
        include_text: bool = False,
        max_bytes: int | None = None,
        backups: int = 5,
        queue_size: int = 10_000,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.include_text = include_text
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self.on_drop = on_drop
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._file = self._open()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def submit(self, record: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Queue a record (or a function building it, run on the writer thread); never blocks."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            if self.on_drop is not None:
                self.on_drop()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread and close the file."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("capture writer is stuck; closing with records still queued")
        self._thread.join(timeout)

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = self._open()

    def _open(self) -> BinaryIO:
        """Open for appending; a line left incomplete by a crash is closed off so the next stays whole."""
        file = open(self.path, "ab")  # noqa: SIM115 (owned by the writer thread)
        if file.tell() > 0:
            with open(self.path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    file.write(b"\n")
                    file.flush()
        return file

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                try:
                    self._write(item() if callable(item) else item)
                except Exception:  # one bad record or a full disk must not stop the writer
                    log.exception("could not write a capture record to %s", self.path)
        finally:
            self._file.close()

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        size = self._file.tell()
        if self.max_bytes and size > 0 and size + len(line) > self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._file.flush()

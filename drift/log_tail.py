"""The live side of `drift watch`: a growing JSONL log tailed by byte offset into feature rows.

Only new complete lines are parsed (a last line still being written is kept until its newline arrives;
a truncated or rotated file is read again from the start). Rows older than the window are dropped, so
memory is bounded by the window, not by the log.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drift.features import CATEGORICAL, NUMERIC, Features, record_features


class LogTail:
    """New complete lines of a growing JSONL file, parsed into feature rows."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.lineno, self.partial = path, 0, 0, b""
        self.rows: deque[tuple[float, dict[str, Any], list[float]]] = deque()
        self.skipped = 0
        self.warnings: list[str] = []

    def poll(self, now: float) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.offset:  # truncated or rotated: start over
            self.offset, self.lineno, self.partial = 0, 0, b""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # b"" after a final newline, else a line still being written
        for raw in lines:
            self.lineno += 1
            if raw.strip():
                self._add(raw, now)

    def _add(self, raw: bytes, now: float) -> None:
        try:
            row, vector, ts = record_features(json.loads(raw))
        except ValueError as exc:  # JSONDecodeError is a ValueError
            self.skipped += 1
            if len(self.warnings) < 20:
                self.warnings.append(f"{self.path}:{self.lineno}: {exc}; line skipped")
            return
        self.rows.append((now if ts is None else ts, row, vector))

    def window(self, start: float, end: float) -> Features:
        while self.rows and self.rows[0][0] <= start:
            self.rows.popleft()
        kept = [r for r in self.rows if r[0] <= end]
        table = pd.DataFrame([r[1] for r in kept], columns=[*NUMERIC, *CATEGORICAL])
        for name in NUMERIC:
            table[name] = table[name].astype(float)
        dims = {len(r[2]) for r in kept}
        vectors = np.asarray([r[2] for r in kept], dtype=float) if len(dims) == 1 and 0 not in dims else None
        feats = Features(table, vectors, np.asarray([r[0] for r in kept]), self.skipped, list(self.warnings))
        self.warnings.clear()
        return feats

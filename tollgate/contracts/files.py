"""The one crash-safe way to write a whole file: a reader sees the old file or the new one, never half.

The bytes go to a temporary file in the same directory (so the rename stays on one filesystem), are
flushed and fsync'ed, renamed over the target with os.replace (atomic on POSIX and Windows), and the
directory is fsync'ed so the rename itself survives a power cut. A failure removes the temporary file
and leaves the previous file untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically; the parent directory must exist."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 keeps the umask's permissions, as a plain open() would (mkstemp forces 0o600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace `path` with `text` atomically."""
    return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(
    path: str | Path,
    obj: Any,
    *,
    indent: int | None = 2,
    separators: tuple[str, str] | None = None,
    default: Callable[[Any], Any] | None = None,
    allow_nan: bool = True,
    newline: bool = False,
) -> Path:
    """Replace `path` with `obj` as JSON atomically. The object is encoded before anything is written,
    so an unencodable value (TypeError, or ValueError for NaN with allow_nan=False) leaves no trace."""
    text = json.dumps(obj, indent=indent, separators=separators, default=default, allow_nan=allow_nan)
    return write_text_atomic(path, text + "\n" if newline else text)


def numpy_scalars(value: Any) -> Any:
    """`default=` for JSON with numpy scalars in it: each as its Python number (numpy loads only when one is met)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fsync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, where a directory cannot be opened; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

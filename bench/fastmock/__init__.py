"""Build and run the compiled streaming mock (fastmock.c) for load-generator capacity runs.

Compiled with the system C compiler into a temporary folder on first use; where no compiler exists
the benchmark falls back to the Python mock and says so (then the mock may be the limit).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from loadgen.mock_server import MockHandle

SOURCE = Path(__file__).with_name("fastmock.c")
_BINARY: Path | None = None


def build() -> Path | None:
    """The compiled mock, or None without a C compiler."""
    global _BINARY
    if _BINARY is not None and _BINARY.exists():
        return _BINARY
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    out = Path(tempfile.mkdtemp(prefix="tollgate-fastmock-")) / "fastmock"
    subprocess.run([cc, "-O2", "-o", str(out), str(SOURCE)], check=True, capture_output=True)
    _BINARY = out
    return out


@contextmanager
def start_fast_mock(ttft_us: int, itl_us: int) -> Iterator[str]:
    """Run the compiled mock on a free loopback port; yields its base URL."""
    binary = build()
    if binary is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) to build bench/fastmock/fastmock.c")
    proc = subprocess.Popen(
        [str(binary), "--port", "0", "--ttft-us", str(ttft_us), "--itl-us", str(itl_us)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("MOCK_URL "):
            raise RuntimeError(f"fastmock did not start (exit {proc.poll()}): {line!r}")
        url = line.split()[1]
        httpx.get(url + "/health", timeout=5.0).raise_for_status()
        yield url
    finally:
        MockHandle("", proc).stop()

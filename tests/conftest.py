"""Shared fixtures: one reference server for the whole session (tiny preset, CPU, loopback)."""

from __future__ import annotations

import pytest

from tests.support.servers import start_reference_server


@pytest.fixture(scope="session")
def reference_server():
    """A running `tollgate serve` on a free loopback port; `.url`, `.proc`, `.stop()`."""
    with start_reference_server() as server:
        yield server

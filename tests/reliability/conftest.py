"""Reliability suite plumbing: a `figures` fixture each test fills in, written to reports/reliability.json.

Each test records what it did (`requests` tried, `faults` injected, `alerts_lost`, free-form `notes`);
at the end of the session the figures, the test's outcome and the first line of its docstring (what it
injects and what must hold) go to reports/reliability.json. `python -m tests.reliability.table`
turns that file into the table of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.helpers import Figures
from tests.support.servers import ServerHandle, start_reference_server
from tollgate.contracts.files import write_json_atomic

REPORT = Path(os.environ.get("TOLLGATE_RELIABILITY_REPORT", "reports/reliability.json"))
_RESULTS: dict[str, dict] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    fig = Figures()
    yield fig
    doc = (request.node.function.__doc__ or "").strip()
    entry = _RESULTS.setdefault(request.node.nodeid, {})
    entry.update(fig.as_dict())
    entry["test"] = request.node.name
    entry["description"] = " ".join(doc.split())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if "figures" not in getattr(item, "fixturenames", ()):
        return
    entry = _RESULTS.setdefault(item.nodeid, {"test": item.name})
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        entry["outcome"] = "xfail (known defect)" if hasattr(report, "wasxfail") else report.outcome
        if hasattr(report, "wasxfail"):
            entry["known_defect"] = str(report.wasxfail)
        entry["duration_s"] = round(report.duration, 1)
        entry["soak"] = item.get_closest_marker("soak") is not None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _RESULTS:
        return
    tests = sorted(_RESULTS.values(), key=lambda e: e.get("test", ""))
    totals = {key: sum(int(t.get(key, 0)) for t in tests) for key in ("requests", "faults", "alerts_lost")}
    body = {
        "schema_version": 1,
        "created_at": time.time(),
        "passed": sum(t.get("outcome") == "passed" for t in tests),
        "failed": sum(t.get("outcome") == "failed" for t in tests),
        "xfailed": sum("known_defect" in t for t in tests),
        "totals": totals,
        "tests": tests,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(REPORT, body)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One reference server for the tests that do not kill or reconfigure it: API key required,
    capture on (no raw text), small engine (4 running, 8 waiting) so overload is cheap to reach."""
    capture = tmp_path_factory.mktemp("shared-server") / "capture.jsonl"
    key = secrets.token_hex(16)
    args = ("--max-num-seqs", "4", "--max-waiting", "8", "--capture", str(capture))
    with start_reference_server(*args, env={"TOLLGATE_API_KEY": key}) as server:
        server.capture = capture
        yield server

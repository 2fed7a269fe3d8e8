"""Empty states say which command produces the data; corrupt files warn and the rest renders."""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd
import pytest

from tollgate.contracts.monitor_store import DDL

pytestmark = pytest.mark.timeout(120)

EMPTY_HINTS = {
    "overview": ("tollgate monitor --help", "tollgate load --help", "tollgate drift --help"),
    "load_tests": ("tollgate load --help",),
    "live": ("tollgate monitor --help",),
    "drift": ("tollgate drift --help",),
    "alerts": ("tollgate monitor --help",),
}


@pytest.mark.parametrize("name", list(EMPTY_HINTS))
def test_empty_data_folder_says_what_to_run(tmp_path, open_page, name):
    at = open_page(tmp_path, name)
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    for hint in EMPTY_HINTS[name]:
        assert hint in text
    assert not at.get("plotly_chart")


@pytest.fixture(scope="module")
def corrupt_root(sample_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    for part in ("runs", "sweeps", "drift"):
        shutil.copytree(sample_root / part, root / part)
    (root / "runs/20260102-rag-long/summary.json").write_text('{"schema_version": 1,\n "run_id": ')
    (root / "runs/20260101-chat-baseline/requests.parquet").write_bytes(b"PAR1 this is not parquet")
    (root / "runs/20260102-chat-candidate/gate.json").write_text("[1, 2")
    (root / "runs/run-still-going").mkdir()
    (root / "sweeps/sweep-broken").mkdir()
    (root / "sweeps/sweep-broken/sweep.json").write_text("null")
    (root / "drift/20990101T000000Z.json").write_text("{}")
    (root / "drift/20990101T000001Z.json").write_text('{"features": [')
    (root / "monitor.db").write_bytes(b"this is not a database, it is a text file" * 100)
    return root


def test_runs_list_warns_per_file_and_lists_the_rest(corrupt_root, open_page):
    at = open_page(corrupt_root, "load_tests")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "rag-long/summary.json:2: not valid JSON" in warnings and "run skipped" in warnings
    assert "candidate/gate.json:1: not valid JSON" in warnings
    assert "sweep-broken/sweep.json: 'points' must be a non-empty list" in warnings
    runs = at.dataframe[0].value.set_index("run_id")
    assert set(runs.index) == {"20260101-chat-baseline", "20260102-chat-candidate", "run-still-going"}
    assert runs.loc["run-still-going", "status"] == "partial (no summary.json)"


def test_unreadable_requests_keep_the_summary(corrupt_root, open_page):
    at = open_page(corrupt_root, "load_tests", run="20260101-chat-baseline")
    assert not at.exception
    assert any("requests.parquet: cannot be read as parquet" in w.value for w in at.warning)
    assert at.dataframe[0].value.set_index("metric").loc["ttft_ms", "p95"] > 0
    assert {m.label for m in at.metric} >= {"Completed", "Throughput (req/s)"}
    assert not at.get("plotly_chart")


def test_unreadable_gate_is_shown_as_such(corrupt_root, open_page):
    at = open_page(corrupt_root, "load_tests", run="20260102-chat-candidate")
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Gate"] == "UNREADABLE"
    assert len(at.get("plotly_chart")) == 5


def test_corrupt_store_warns_and_overview_still_shows_verdicts(corrupt_root, open_page):
    at = open_page(corrupt_root, "overview")
    assert not at.exception
    assert any("not a readable monitor store" in w.value for w in at.warning)
    text = " ".join(m.value for m in at.markdown)
    assert ":red[DRIFT]" in text and "20260102-chat-candidate" not in text
    for name in ("live", "alerts"):
        page = open_page(corrupt_root, name)
        assert not page.exception
        assert any("not a readable monitor store" in w.value for w in page.warning)


def test_corrupt_drift_files_warn_and_the_latest_good_check_renders(corrupt_root, open_page):
    at = open_page(corrupt_root, "drift")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "20990101T000000Z.json: 'features' must be a list" in warnings
    assert "20990101T000001Z.json:1: not valid JSON" in warnings
    assert {m.label: m.value for m in at.metric}["Verdict"] == "DRIFT"
    assert len(at.get("plotly_chart")) == 2


def test_store_missing_a_table_warns_for_that_section_only(tmp_path, open_page):
    conn = sqlite3.connect(tmp_path / "monitor.db")
    conn.executescript(
        DDL.replace("CREATE TABLE IF NOT EXISTS outbox", "CREATE TABLE IF NOT EXISTS outbox_renamed")
    )
    conn.execute(
        "INSERT INTO alerts (ts, fingerprint, rule, state, labels, active_since) VALUES (1, 'f', 'R', 'firing', '{}', 1)"
    )
    conn.commit()
    conn.close()
    at = open_page(tmp_path, "alerts")
    assert not at.exception
    assert any("Notification delivery" in w.value and "no such table: outbox" in w.value for w in at.warning)
    assert ("Firing", "1") in [(m.label, m.value) for m in at.metric]


def test_run_with_requests_csv_instead_of_parquet(sample_root, tmp_path, open_page):
    run = tmp_path / "runs" / "csv-run"
    shutil.copytree(sample_root / "runs" / "20260102-rag-long", run)
    pd.read_parquet(run / "requests.parquet").to_csv(run / "requests.csv", index=False)
    (run / "requests.parquet").unlink()
    at = open_page(tmp_path, "load_tests", run="csv-run")
    assert not at.exception and not at.warning
    assert len(at.get("plotly_chart")) == 5

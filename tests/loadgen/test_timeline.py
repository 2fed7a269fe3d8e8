"""Metric arithmetic on recorded chunk timelines (docs/reference/metrics.md definitions)."""

from __future__ import annotations

import math

import pytest

from loadgen.collector import Collector
from loadgen.timeline import RequestRecord


def record(chunks, tokens, usage=None, end=None, stream=True, intended=math.nan):
    rec = RequestRecord("r-1", "synthetic", 0, stream)
    rec.send_s, rec.send_perf, rec.intended_perf = 1000.0, 10.0, intended
    rec.chunk_perf = [10.0 + c for c in chunks]
    rec.chunk_tokens = tokens
    rec.end_perf = 10.0 + (end if end is not None else chunks[-1])
    rec.usage_output_tokens = usage
    rec.status = 200
    return rec


def test_single_token_chunks_with_usage():
    rec = record([0.100, 0.110, 0.130, 0.160], [None] * 4, usage=4, end=0.161)
    assert rec.ttft_ms() == pytest.approx(100.0)
    assert rec.e2e_ms() == pytest.approx(161.0)
    assert rec.tpot_ms() == pytest.approx((161.0 - 100.0) / 3)
    assert rec.itl_ms() == pytest.approx([10.0, 20.0, 30.0])
    assert rec.output_tokens() == (4, False)


def test_multi_token_chunks_divide_gaps_by_tokens_carried():
    rec = record([0.050, 0.090, 0.100], [1, 4, 2], usage=7)
    assert rec.itl_ms() == pytest.approx([10.0, 5.0])
    assert rec.tpot_ms() == pytest.approx((100.0 - 50.0) / 6)


def test_unknown_chunk_sizes_share_the_usage_total():
    rec = record([0.050, 0.090, 0.130], [None, None, None], usage=6)
    assert rec.itl_ms() == pytest.approx([20.0, 20.0])  # 2 tokens per chunk on average


def test_missing_usage_counts_chunks_and_flags_estimate():
    rec = record([0.020, 0.030, 0.040], [None, None, None], usage=None)
    assert rec.output_tokens() == (3, True)
    assert rec.tpot_ms() == pytest.approx(10.0)
    row = Collector().add(rec)
    assert row["output_tokens_estimated"] is True


def test_single_token_output_has_no_tpot_or_itl():
    rec = record([0.042], [None], usage=1, end=0.045)
    assert rec.ttft_ms() == pytest.approx(42.0)
    assert math.isnan(rec.tpot_ms())
    assert rec.itl_ms() == []


def test_non_streaming_ttft_equals_e2e_without_itl():
    rec = record([0.300], [12], usage=12, stream=False)
    assert rec.ttft_ms() == rec.e2e_ms() == pytest.approx(300.0)
    assert math.isnan(rec.tpot_ms()) and rec.itl_ms() == []


def test_open_loop_latency_from_intended_send_and_queue_delay():
    rec = record([0.100, 0.110], [None, None], usage=2, intended=9.75)  # sent 250 ms late
    row = rec.row()
    assert row["client_queue_ms"] == pytest.approx(250.0)
    assert row["ttft_from_intended_ms"] == pytest.approx(350.0)
    assert row["intended_send_s"] == pytest.approx(999.75)


def test_failed_request_has_no_latency_and_is_not_histogrammed():
    rec = record([0.1], [None], usage=None)
    rec.error = "connection reset (server closed the stream)"
    collector = Collector()
    row = collector.add(rec)
    assert row["ok"] is False and math.isnan(row["ttft_ms"])
    assert collector.histograms["ttft_ms"].count == 0


def test_a_killed_generator_is_rebuilt_from_its_flushed_rows(tmp_path):
    import json

    from loadgen.cli import ensure_summary
    from loadgen.report import PARTIAL_ROWS

    live = Collector()
    records = [record([0.1, 0.11, 0.13], [None, 2, None], usage=4), record([0.2], [None], usage=None)]
    records[1].request_id = "r-2"
    rows = [live.add(r) for r in records]
    (tmp_path / PARTIAL_ROWS).write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"torn": ')
    summary = ensure_summary(tmp_path, {"run_id": "r", "rate": None, "goodput_slo": {}}, code=None)
    assert summary["status"] == "interrupted" and summary["requests"]["completed"] == 2
    for name in (
        "ttft_ms",
        "itl_ms",
        "tpot_ms",
        "e2e_ms",
    ):  # same values, up to float rounding at bucket edges
        assert summary["metrics"][name] == pytest.approx(live.histograms[name].summary(), rel=0.01)
    assert not (tmp_path / PARTIAL_ROWS).exists() and (tmp_path / "requests.parquet").is_file()


def test_server_that_went_away_fails_the_run_even_after_successes():
    from loadgen.report import server_went_away
    from loadgen.timeline import INCOMPLETE

    def row(send, ok, status, error=""):
        return {"send_s": send, "ok": ok, "status": status, "error": error}

    served = [row(t, True, 200) for t in range(5)]
    refused = [row(5 + t, False, 0, "ConnectionRefusedError") for t in range(3)]
    assert server_went_away(served + refused)
    # HTTP errors at the end mean the server still answers; one refused request is not enough
    assert not server_went_away(served + [row(9 + t, False, 500, "HTTP 500") for t in range(3)])
    assert not server_went_away(served + refused[:1])
    # requests cut off in flight by the end of the run do not hide the refusals before them
    assert server_went_away(served + refused + [row(9, False, 0, INCOMPLETE)])
    assert not server_went_away(refused[:2])

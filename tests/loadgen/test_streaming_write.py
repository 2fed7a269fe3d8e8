"""The final write streams rows in batches: same files and figures as the full-frame computation, and a
kill during it loses no row."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from loadgen import rowstream
from loadgen.collector import Collector
from loadgen.histogram import SUB_BUCKETS
from loadgen.report import PARTIAL_ROWS, good_requests, write_run
from loadgen.timeline import INCOMPLETE
from tollgate.contracts.run_folder import REQUEST_COLUMNS, REQUEST_TYPES

HIST_REL = 1 / (2 * SUB_BUCKETS)  # the histogram's stated relative error
SLO = {"ttft_ms": 60.0, "tpot_ms": 12.0}


def synthetic_rows(n: int, seed: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        send = 1_000.0 + i * 0.01 + rng.uniform(0, 0.5)
        ttft, tpot = float(rng.lognormal(3.5, 0.5)), float(rng.lognormal(2.2, 0.3))
        out = int(rng.integers(1, 200))
        fate = rng.random()
        ok = fate > 0.08
        error = "" if ok else (INCOMPLETE if fate < 0.02 else "HTTP 500")
        requested_in = int(rng.choice([-1, 64, 128]))
        rows.append(
            {
                "request_id": f"r-{i}",
                "scenario": "synthetic",
                "worker": int(i % 3),
                "intended_send_s": float("nan"),
                "send_s": send,
                "first_token_s": send + ttft / 1000,
                "end_s": send + (ttft + out * tpot) / 1000,
                "ttft_ms": ttft if ok else float("nan"),
                "e2e_ms": ttft + out * tpot if ok else float("nan"),
                "tpot_ms": tpot if ok and out > 1 else float("nan"),
                "itl_mean_ms": tpot if ok else float("nan"),
                "client_queue_ms": float("nan"),
                "prompt_tokens": requested_in + 7 if requested_in > 0 else int(rng.integers(-1, 50)),
                "output_tokens": out,
                "output_tokens_estimated": bool(rng.random() < 0.1),
                "n_chunks": out,
                "status": 200 if ok else 500,
                "ok": ok,
                "error": error,
                "ttft_from_intended_ms": float("nan"),
                "e2e_from_intended_ms": float("nan"),
                "chunk_ms": [round(ttft + k * tpot, 3) for k in range(min(out, 4))],
                "chunk_tokens": [1] * min(out, 4),
                "stream": True,
                "requested_input_tokens": requested_in,
                "requested_output_tokens": out if rng.random() < 0.5 else 128,
                "turn": int(rng.integers(0, 4)),
            }
        )
    return rows


def collector_for(rows: list[dict]) -> Collector:
    collector = Collector()
    for row in rows:
        if row["ok"]:
            for metric in ("ttft_ms", "e2e_ms", "tpot_ms"):
                collector.histograms[metric].record(row[metric])
    return collector


def nearest_rank(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q, method="inverted_cdf"))


def test_streamed_summary_and_parquet_equal_the_full_frame(tmp_path, monkeypatch):
    monkeypatch.setattr(rowstream, "BATCH_ROWS", 700)  # several row groups
    rows = synthetic_rows(3000)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / PARTIAL_ROWS).write_text("".join(json.dumps(r) + "\n" for r in rows[:2500]))
    collector = collector_for(rows)
    collector.rows = rows[2500:]  # the tail not flushed yet
    config = {"run_id": "s", "rate": None, "goodput_slo": SLO}
    summary = write_run(run_dir, collector, config, "complete", 0.0, 1_100.0, {"client_bound": False})

    frame = pd.DataFrame(rows)  # the full-frame reference, as the run folder was built before
    ok = frame[frame["ok"]]
    duration = 1_100.0 - frame["send_s"].min()
    assert summary["started_at"] == frame["send_s"].min()
    assert summary["requests"] == {
        "sent": 3000,
        "completed": len(ok),
        "failed": int((~frame["ok"] & (frame["error"] != INCOMPLETE)).sum()),
        "incomplete": int((frame["error"] == INCOMPLETE).sum()),
        "output_tokens_estimated": int(ok["output_tokens_estimated"].sum()),
    }
    assert summary["errors"] == {"HTTP 500": int((frame["error"] == "HTTP 500").sum())}
    thr = summary["throughput"]
    assert thr["requests_per_s"] == pytest.approx(len(ok) / duration, rel=1e-12)
    assert thr["output_tokens_per_s"] == pytest.approx(ok["output_tokens"].sum() / duration, rel=1e-12)
    prompt = ok["prompt_tokens"][ok["prompt_tokens"] >= 0].sum()
    assert thr["input_tokens_per_s"] == pytest.approx(prompt / duration, rel=1e-12)
    span = frame["send_s"].max() - frame["send_s"].min()
    assert thr["achieved_send_rate_per_s"] == pytest.approx(2999 / span, rel=1e-12)
    good = int(good_requests(frame, SLO).sum())
    assert summary["goodput"]["fraction"] == pytest.approx(good / 3000, rel=1e-12)
    for metric in ("ttft_ms", "e2e_ms", "tpot_ms"):  # nearest rank within the histogram's error
        values = ok[metric].dropna().to_numpy()
        block = summary["metrics"][metric]
        assert block["count"] == len(values) and block["mean"] == pytest.approx(
            values.mean(), abs=1e-6
        )  # rounded to 6 places
        for key, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
            assert block[key] == pytest.approx(nearest_rank(values, q), rel=HIST_REL)

    known_in = ok[(ok["requested_input_tokens"] >= 0) & (ok["prompt_tokens"] >= 0)]
    known_out = ok[(ok["requested_output_tokens"] >= 0) & ~ok["output_tokens_estimated"]]
    lengths = summary["lengths"]
    for block, values in (  # exact, numpy's linear percentiles
        (lengths["input_tokens"]["achieved"], known_in["prompt_tokens"]),
        (lengths["output_tokens"]["requested"], known_out["requested_output_tokens"]),
        (lengths["output_tokens"]["achieved"], known_out["output_tokens"]),
    ):
        arr = values.to_numpy(dtype=float)
        assert block["count"] == len(arr) and block["mean"] == pytest.approx(arr.mean(), rel=1e-12)
        assert block["p50"] == np.percentile(arr, 50) and block["p99"] == np.percentile(arr, 99)

    assert sorted(summary["turns"]) == ["1", "2", "3"]
    for turn, block in summary["turns"].items():
        in_turn = ok[ok["turn"] == int(turn)]
        ttft = in_turn["ttft_ms"].to_numpy()
        assert block["requests"] == len(in_turn) and block["ttft_ms"]["count"] == len(ttft)
        assert block["ttft_ms"]["p99"] == pytest.approx(nearest_rank(ttft, 99), rel=HIST_REL)
        assert block["prompt_tokens_mean"] == pytest.approx(
            in_turn["prompt_tokens"][in_turn["prompt_tokens"] >= 0].mean(), rel=1e-12
        )

    written = pd.read_parquet(run_dir / "requests.parquet")
    assert pq.ParquetFile(run_dir / "requests.parquet").num_row_groups == 5
    assert list(written.columns) == list(REQUEST_TYPES) and list(REQUEST_COLUMNS) == list(
        written.columns[:19]
    )
    expected = frame.set_index("request_id").sort_index()
    got = written.set_index("request_id").sort_index()
    scalar = [c for c in REQUEST_COLUMNS if c != "request_id"]
    pd.testing.assert_frame_equal(got[scalar], expected[scalar])  # same values and dtypes
    assert list(got.loc["r-7", "chunk_ms"]) == expected.loc["r-7", "chunk_ms"]
    assert not (run_dir / PARTIAL_ROWS).exists() and "Latency CDFs" in (run_dir / "report.html").read_text()


def test_a_kill_during_the_final_write_keeps_every_flushed_row(tmp_path, monkeypatch):
    from loadgen.cli import ensure_summary

    rows = synthetic_rows(400)
    (tmp_path / PARTIAL_ROWS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"run_id": "k", "rate": None, "goodput_slo": {}}

    def killed(self):
        raise KeyboardInterrupt  # the generator dies while requests.parquet is being written

    monkeypatch.setattr(rowstream.RequestsWriter, "close", killed)
    with pytest.raises(KeyboardInterrupt):
        write_run(tmp_path, Collector(), config, "complete", 0.0, 2_000.0, {"client_bound": False})
    monkeypatch.undo()
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "requests.parquet").exists()
    assert (tmp_path / PARTIAL_ROWS).is_file()  # removed only once summary.json is in place

    summary = ensure_summary(tmp_path, config, code=None)  # what `tollgate load` does next
    assert summary["requests"]["sent"] == 400 and summary["status"] == "interrupted"
    assert len(pd.read_parquet(tmp_path / "requests.parquet")) == 400
    assert summary["metrics"]["ttft_ms"]["count"] == sum(r["ok"] for r in rows)
    assert any("400 requests recovered" in note for note in summary["notes"])


def test_recover_rebuilds_a_folder_whose_generator_and_cli_both_died(tmp_path, capsys):
    from loadgen import cli
    from loadgen.report import RUN_CONFIG
    from loadgen.run_dir import write_run_config

    rows = synthetic_rows(120)
    parser = cli.build_parser()
    flags = ["--url", "http://127.0.0.1:9", "--rate", "5", "--requests", "120", "--api-key", "s3cret"]
    config = cli.make_config(parser.parse_args([*flags, "--out", str(tmp_path)]), parser)
    run_dir = tmp_path / config.run_id
    run_dir.mkdir()
    (run_dir / PARTIAL_ROWS).write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"torn')
    write_run_config(run_dir, config)
    assert "s3cret" not in (run_dir / RUN_CONFIG).read_text()

    assert cli.main(["--recover", str(run_dir)]) == 2  # rows just written: the generator may be alive
    assert "may still be running" in capsys.readouterr().err
    old = time.time() - cli.RECOVER_QUIET_S - 1
    for name in (PARTIAL_ROWS, RUN_CONFIG):
        os.utime(run_dir / name, (old, old))
    assert cli.main(["--recover", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["requests"]["sent"] == 120 and summary["throughput"]["offered_rate_per_s"] == 5.0
    # the config written for --recover comes back as summary.json's config block, key for key
    assert summary["config"] == {k: v for k, v in config.to_dict().items() if k != "api_key"}
    assert not (run_dir / PARTIAL_ROWS).exists() and not (run_dir / RUN_CONFIG).exists()
    assert cli.main(["--recover", str(run_dir)]) == 2  # a second time: already has a summary
    assert cli.main(["--recover", str(tmp_path)]) == 2
    assert "no requests.partial.jsonl" in capsys.readouterr().err


def test_recover_reads_a_folder_written_before_the_typed_config(tmp_path):
    """config.partial.json as the dict-config generator wrote it (and as an older one, with fewer keys)."""
    from loadgen import cli
    from loadgen.report import RUN_CONFIG

    written = {
        "run_id": "old-20260101T000000-ab12",
        "name": "old",
        "run_dir": str(tmp_path / "old"),
        "url": "http://127.0.0.1:9",
        "model": "m",
        "endpoint": "completions",
        "stream": False,
        "users": 4,
        "rate": None,
        "arrival": "poisson",
        "burstiness": 1.0,
        "max_concurrency": None,
        "shape": {"kind": "step", "users": 4, "duration_s": 10.0, "options": {}},
        "input_tokens": "64",
        "output_tokens": "32",
        "output_tokens_from_flag": True,
        "dataset": None,
        "scenario": "synthetic",
        "turns": "3",
        "prefix_count": 4,
        "prefix_tokens": 512,
        "context_tokens": 4000,
        "duration_s": 10.0,
        "requests": None,
        "processes": 2,
        "seed": 7,
        "timeout_s": 600.0,
        "ignore_eos": False,
        "temperature": None,
        "goodput_slo": {"ttft_ms": 60.0},
        "server": {"url": "http://127.0.0.1:9", "reachable": True, "models": ["m"], "http_server": "x"},
        "tokens": {"source": "words", "words": [], "warnings": []},
    }
    older = {k: v for k, v in written.items() if k not in ("turns", "output_tokens_from_flag", "tokens")}
    old = time.time() - cli.RECOVER_QUIET_S - 1
    for name, config in (("old", written), ("older", older)):
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / PARTIAL_ROWS).write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(50)))
        (run_dir / RUN_CONFIG).write_text(json.dumps(config))
        for f in (PARTIAL_ROWS, RUN_CONFIG):
            os.utime(run_dir / f, (old, old))
        assert cli.main(["--recover", str(run_dir)]) == 0
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["config"] == {k: v for k, v in config.items() if k != "server"}
        assert summary["server"] == written["server"] and summary["environment"]["processes"] == 2
        assert summary["requests"]["sent"] == 50 and summary["run_id"] == written["run_id"]

"""Capacity plan from a sweep's knee: replicas for a target rate with headroom, cost per token."""

from __future__ import annotations

import pytest

from loadgen.capacity import plan
from loadgen.sweep import knee_point


def _knee(rps=4.0, out_tps=400.0, in_tps=200.0):
    return {
        "run_id": "k",
        "requests_per_s": rps,
        "output_tokens_per_s": out_tps,
        "input_tokens_per_s": in_tps,
    }


def test_replicas_cover_the_target_rate_inside_the_headroom():
    block = plan(_knee(rps=4.0), target_rate=10.0, price_per_hour=2.0, headroom=0.2)
    # 4 req/s per replica, 3.2 usable: 10 / 3.2 = 3.125 -> 4 replicas, 2.5 req/s each
    assert block["feasible"] and block["replicas"] == 4
    assert block["load_per_replica_rps"] == pytest.approx(2.5)
    assert block["output_tokens_per_s_per_replica"] == 400.0
    # 4 replicas x 2.0 = 8.0/hour; 10 req/s x 100 output tokens x 3600 s = 3.6M tokens/hour
    assert block["cost_per_hour"] == pytest.approx(8.0)
    assert block["cost_per_million_output_tokens"] == pytest.approx(8.0 / 3.6)
    assert block["cost_per_million_input_tokens"] == pytest.approx(8.0 / 1.8)
    assert any("linear scaling" in a for a in block["assumptions"])


def test_an_exact_fit_needs_no_extra_replica_and_no_price_means_no_cost():
    block = plan(_knee(rps=5.0), target_rate=10.0, price_per_hour=None, headroom=0.0)
    assert block["replicas"] == 2 and block["cost_per_million_output_tokens"] is None


def test_no_knee_is_reported_as_infeasible():
    block = plan(None, target_rate=10.0, price_per_hour=1.0, headroom=0.2)
    assert block["feasible"] is False and "no sweep step met the SLO" in block["reason"]


def test_knee_point_is_the_highest_passing_step():
    points = [
        {"load": 1, "run_id": "a", "passed": True, "requests_per_s": 1.0, "goodput_per_s": 1.0},
        {"load": 2, "run_id": "b", "passed": True, "requests_per_s": 2.0, "goodput_per_s": 2.0},
        {"load": 4, "run_id": "c", "passed": False, "requests_per_s": 3.0, "goodput_per_s": 1.0},
    ]
    assert knee_point(points)["run_id"] == "b"


def test_price_without_target_rate_and_bad_headroom_are_refused(capsys):
    from loadgen.sweep_cli import main

    for extra in (["--price-per-hour", "2"], ["--target-rate", "5", "--headroom", "1.5"]):
        with pytest.raises(SystemExit) as exc:
            main(["--slo", "x.toml", "--rates", "1", *extra])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--price-per-hour needs --target-rate" in err and "fraction in [0, 1)" in err


def test_sweep_writes_the_capacity_plan_against_a_live_server(tmp_path, capfd):
    """One real sweep step against the mock on loopback: sweep.json, sweep.html and the CLI table
    carry the plan computed from that step's measured throughput."""
    import json
    from pathlib import Path

    from loadgen.mock_server import start_mock_server
    from loadgen.sweep_cli import main

    slo = Path(__file__).parents[2] / "examples" / "slo.toml"
    with start_mock_server("--ttft-ms", "5", "--itl-ms", "1") as mock:
        code = main(
            ["--slo", str(slo), "--rates", "4", "--step-duration", "3s", "--url", mock.url]
            + ["--sweep-out", str(tmp_path / "sweeps"), "--out", str(tmp_path / "runs")]
            + ["--output-tokens", "8", "--input-tokens", "16", "--target-rate", "10"]
            + ["--price-per-hour", "3", "--headroom", "0.25"]
        )
    out = capfd.readouterr().out
    assert code == 0, out
    folder = Path(out.strip().splitlines()[-1])
    sweep = json.loads((folder / "sweep.json").read_text())
    step, block = sweep["points"][0], sweep["capacity"]
    assert block["capacity_per_replica_rps"] == step["requests_per_s"] > 0
    assert block["replicas"] == pytest.approx(-(-10 // (step["requests_per_s"] * 0.75)))
    assert block["output_tokens_per_request"] == pytest.approx(8.0)
    assert block["cost_per_million_output_tokens"] == pytest.approx(
        block["replicas"] * 3 / (10 * 8 * 3600) * 1e6
    )
    assert "cost per 1M output tokens" in out and "linear scaling" in out
    assert "Capacity and cost" in (folder / "sweep.html").read_text()

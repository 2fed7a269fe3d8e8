"""Sweep decisions: the knee and early stopping past saturation."""

from __future__ import annotations

from loadgen.sweep import knee, stop_reason


def pt(load, rps, e2e=100.0, passed=True, client_bound=False):
    return {
        "load": load,
        "requests_per_s": rps,
        "e2e_p50_ms": e2e,
        "passed": passed,
        "client_bound": client_bound,
        "run_id": f"r{load}",
        "goodput_per_s": rps,
    }


def test_knee_is_the_highest_passing_load():
    points = [pt(1, 1.0), pt(2, 2.0), pt(4, 3.9, passed=False), pt(8, 4.0, passed=False)]
    assert knee(points)["load"] == 2
    assert knee([pt(1, 1.0, passed=False)]) is None


def test_open_loop_stops_once_completions_fall_behind_the_offered_rate():
    assert stop_reason([pt(4, 3.95)], "rate") is None
    assert "saturated" in stop_reason([pt(4, 3.95), pt(8, 5.0)], "rate")


def test_closed_loop_stops_when_throughput_is_flat_and_latency_grows():
    assert stop_reason([pt(4, 40.0, 100.0), pt(8, 78.0, 105.0)], "concurrency") is None
    assert "saturated" in stop_reason([pt(8, 78.0, 105.0), pt(16, 80.0, 200.0)], "concurrency")


def test_two_failures_in_a_row_or_a_client_bound_step_stop_the_sweep():
    assert "two steps" in stop_reason([pt(1, 1.0, passed=False), pt(2, 2.0, passed=False)], "rate")
    assert "client_bound" in stop_reason([pt(1, 1.0, client_bound=True)], "rate")


def test_unwritable_outputs_fail_before_any_load(tmp_path, capsys):
    """A --sweep-out or --out that cannot be created is refused up front (exit 2, path named), not after
    the first step has loaded the server."""
    from pathlib import Path

    from loadgen.sweep_cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    slo = Path(__file__).parents[2] / "examples" / "slo.toml"
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port; no request may be needed
    for flag in ("--sweep-out", "--out"):
        code = main(["--slo", str(slo), "--rates", "1", "--url", dead, flag, str(blocker / "reports")])
        err = capsys.readouterr().err
        assert code == 2, err
        assert flag in err and "a-file" in err and "Traceback" not in err

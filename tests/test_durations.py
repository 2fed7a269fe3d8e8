"""The one duration grammar (tollgate.contracts.durations) and the flags that use it."""

from __future__ import annotations

import argparse

import pytest

from tollgate.contracts.durations import (
    DurationError,
    duration_arg,
    duration_type,
    format_duration,
    parse_duration,
)

# every form some component's own parser accepted before the grammar was shared, and what it means
VALID = [
    ("90", 90.0),  # plain seconds (load, drift, demo)
    ("1.5", 1.5),
    ("0", 0.0),
    ("30s", 30.0),
    ("500ms", 0.5),  # load, monitor
    ("250ms", 0.25),
    ("5m", 300.0),
    ("2h", 7200.0),
    ("1d", 86400.0),  # drift, monitor rules
    ("1h30m", 5400.0),  # load (drift check did not accept it before)
    ("1m30s", 90.0),  # demo
    ("1m30", 90.0),  # demo: minutes, then bare seconds
    ("1h2m30", 3750.0),
    ("1h 30m", 5400.0),
    ("90 s", 90.0),  # drift allowed a space before the unit
    ("  2m  ", 120.0),
    ("5M", 300.0),  # load lower-cased its input
    ("1.5h", 5400.0),
    ("1s500ms", 1.5),
    ("1w", 7 * 86400.0),  # Prometheus ranges (canary --rate-window passed them through)
    ("1y", 365 * 86400.0),
    (3, 3.0),  # YAML numbers in rules files
    (0.25, 0.25),
]

INVALID = [
    "",
    "   ",
    "soon",
    "1fortnight",
    "5 minutes",
    "1h30",  # bare seconds only after minutes: 1h30 could mean 1h30m
    "1ms30",
    "30 1m",
    "-5s",
    "5x",
    "1..5s",
    "ms",
    "s5",
    "1.s",
    "nan",
    "inf",
]


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_valid_forms(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_forms_name_the_place_and_the_valid_forms(text) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text, "--window")
    message = str(err.value)
    assert message.startswith(f"--window: {text!r} is not a duration; write e.g. ")
    assert "500ms" in message and "1h30m" in message


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), True])
def test_bad_numbers(value) -> None:
    with pytest.raises(DurationError, match="for: "):
        parse_duration(value, "for")


def test_argparse_type_names_the_flag_and_bounds() -> None:
    p = argparse.ArgumentParser(exit_on_error=False)
    p.add_argument("--duration", type=duration_arg)
    p.add_argument("--window", type=duration_type(positive=True))
    p.add_argument("--phase", type=duration_type(minimum=15, maximum=3600))
    args = p.parse_args(["--duration", "1h30m", "--window", "2d", "--phase", "1m30s"])
    assert (args.duration, args.window, args.phase) == (5400.0, 172800.0, 90.0)
    cases = [
        (["--duration", "soon"], "argument --duration: 'soon' is not a duration; write e.g."),
        (["--window", "0s"], "argument --window: '0s' must be longer than 0s"),
        (["--phase", "10s"], "argument --phase: '10s' (10s) is out of range: use 15s to 1h"),
        (["--phase", "2h"], "argument --phase: '2h' (2h) is out of range: use 15s to 1h"),
    ]
    for argv, message in cases:
        with pytest.raises(argparse.ArgumentError) as err:
            p.parse_args(argv)
        assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600, "1h"),
        (7200, "2h"),
        (5400, "90m"),
        (60, "1m"),
        (90, "90s"),
        (1, "1s"),
        (0.25, "250ms"),
        (0, "0s"),
    ],
)
def test_format_is_prometheus_syntax_and_parses_back(seconds, text) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_shape_options_and_sweep_steps_take_the_grammar(capsys) -> None:
    from loadgen.shapes import ShapeError, parse_shape
    from loadgen.sweep_cli import main as sweep

    spike = parse_shape("spike", 8, 600.0, ["spike_at=1m30s", "spike_s=45", "base=2"])
    assert spike.options == {"spike_at": 90.0, "spike_s": 45.0, "base": 2.0}
    with pytest.raises(ShapeError, match=r"--shape-opt ramp_s: 'soon' is not a duration"):
        parse_shape("ramp", 8, 60.0, ["ramp_s=soon"])
    with pytest.raises(SystemExit) as exit_:
        sweep(["--slo", "slo.toml", "--rates", "1", "--step-duration", "1fortnight"])
    assert exit_.value.code == 2
    assert "--step-duration: '1fortnight' is not a duration" in capsys.readouterr().err

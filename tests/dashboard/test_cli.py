"""`tollgate dashboard` argument handling and the Streamlit command it runs."""

from __future__ import annotations

import pytest

from dashboards import cli


def test_defaults_bind_loopback_without_telemetry():
    args = cli.parse_args([])
    assert (args.host, args.port, str(args.data)) == ("127.0.0.1", 8501, "reports")
    cmd = cli.streamlit_command(args.host, args.port)
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert cmd[1:5] == ["-m", "streamlit", "run", str(cli.APP)]
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8501"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "--port 0: choose a port between 1 and 65535"),
        (["--port", "x"], "invalid int value"),
        (
            ["--prometheus", "127.0.0.1:9090"],
            "--prometheus 127.0.0.1:9090: give the base URL, e.g. http://127.0.0.1:9090",
        ),
        (["--alertmanager", "am"], "--alertmanager am: give the base URL, e.g. http://127.0.0.1:9093"),
        (["--window", "1 minute"], "--window 1 minute: write a duration such as 30s, 1m or 5m"),
    ],
)
def test_bad_flags_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_data_that_is_a_file_is_rejected(tmp_path, capsys):
    path = tmp_path / "monitor.db"
    path.write_text("")
    with pytest.raises(SystemExit):
        cli.parse_args(["--data", str(path)])
    assert "is a file; give the folder" in capsys.readouterr().err


def test_prometheus_flags_parse():
    args = cli.parse_args(
        ["--prometheus", "http://p:9090/", "--alertmanager", "http://a:9093", "--window", "30s"]
    )
    assert (args.prometheus, args.alertmanager, args.window_s) == ("http://p:9090/", "http://a:9093", 30.0)

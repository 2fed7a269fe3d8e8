import subprocess
import sys

import pytest

from tollgate import cli


def test_help_lists_every_component(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("serve", "load", "gate", "sweep", "monitor", "drift", "dashboard", "demo"):
        assert f"  {name}" in out


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2


def test_unknown_command_is_a_usage_error(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_missing_component_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "serve", ("tollgate_no_such_module.cli", "x"))
    assert cli.main(["serve"]) == cli.EXIT_NOT_BUILT
    assert "not built yet" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "tollgate", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("tollgate ")

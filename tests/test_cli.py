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


HEAVY = ("scipy", "torch", "evidently", "streamlit", "pandas")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "argv",
    [
        ["gate", "--help"],
        ["drift", "check", "--help"],
        ["drift", "watch", "--help"],
        ["load", "--help"],
        ["--help"],
    ],
)
def test_help_imports_no_heavy_library(argv):
    """`--help` answers without the libraries the work needs (they cost seconds of imports)."""
    code = (
        "import sys\nfrom tollgate import cli\n"
        f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.timeout(60)
def test_missing_third_party_module_names_the_extra():
    """torch made unimportable (as in a base install): `serve` exits 3 with the exact pip line."""
    code = (
        "import sys\nsys.modules['torch'] = None\nimport importlib.util\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'torch' else object()\n"
        "from tollgate import cli\nsys.exit(cli.main(['serve', '--model', 'tiny']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == cli.EXIT_MISSING_EXTRA
    assert cli.pip_line("server") in out.stderr and "'torch'" in out.stderr


def test_missing_module_raised_by_a_command_names_the_extra(monkeypatch, capsys):
    """A heavy library imported inside the command (drift's Evidently) is caught where it is raised."""
    import types

    def main(argv):
        raise ModuleNotFoundError("No module named 'evidently'", name="evidently")

    monkeypatch.setitem(sys.modules, "tollgate_test_drift_cli", types.SimpleNamespace(main=main))
    monkeypatch.setitem(cli.COMMANDS, "drift", ("tollgate_test_drift_cli", "x"))
    assert cli.main(["drift", "check"]) == cli.EXIT_MISSING_EXTRA
    assert "pip install 'tollgate-llm[drift]'" in capsys.readouterr().err


def test_missing_module_outside_the_table_is_a_real_error(monkeypatch):
    import types

    def main(argv):
        raise ModuleNotFoundError("No module named 'loadgen.nope'", name="loadgen.nope")

    monkeypatch.setitem(sys.modules, "tollgate_test_gate_cli", types.SimpleNamespace(main=main))
    monkeypatch.setitem(cli.COMMANDS, "gate", ("tollgate_test_gate_cli", "x"))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["gate", "x"])

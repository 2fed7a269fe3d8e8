"""Helpers shared by the release tests."""

from __future__ import annotations


def front_door(argv: list[str], capsys) -> tuple[int, str]:
    """`tollgate ARGV` in this process: (exit code, stderr); argparse's exit counts as a code."""
    from tollgate.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err

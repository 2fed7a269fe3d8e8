"""The parser both release commands (`tollgate ab`, `tollgate canary`) start from."""

from __future__ import annotations

import argparse


def new_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser whose description is the command module's docstring, kept as written (exit codes, routes)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )

"""`python -m tollgate.docgen [--check]`: the generated parts of docs/.

docs/reference/cli.md is written from the argparse parsers; benchmark and reliability tables are written
by their producers between `<!-- section:NAME -->` markers of docs/benchmarks.md (`write_section`).

The parsers are the components' own: each command's `main` is called with no arguments while
`ArgumentParser.parse_known_args` is replaced by a hook that hands back the parser instead of parsing,
so nothing runs and no component needs to expose its parser. Subcommands come from argparse's
subparsers and from a component's `SUBCOMMANDS` (e.g. `tollgate monitor gpu`). The formatter width is
fixed, so the page does not depend on the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from tollgate.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "reference" / "cli.md"
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
WIDTH = 100

# Commands that hand the flags they do not know to another command's parser (they run `tollgate load`).
FORWARDS_TO: dict[str, str] = {"sweep": "load", "ab": "load"}


class _Captured(BaseException):
    """Raised by the hook with the parser a command's `main` was about to use (BaseException: a
    command's `except Exception` must not swallow it)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def _hook(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
    raise _Captured(self)


def capture(module_name: str, argv: list[str]) -> argparse.ArgumentParser:
    """The first parser `module_name.main(argv)` parses with."""
    main = importlib.import_module(module_name).main
    original = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = _hook  # type: ignore[method-assign]
    try:
        main(argv)
    except _Captured as got:
        return got.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    raise RuntimeError(f"{module_name}.main({argv}) returned without parsing its arguments")


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command path ("load", "drift check", "monitor silence add", ...) -> its parser."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(path: str, parser: argparse.ArgumentParser) -> None:
        found[path] = parser
        for name, sub in _subparsers(parser):
            walk(f"{path} {name}", sub)

    for name, (module_name, _) in COMMANDS.items():
        walk(name, capture(module_name, []))
        for sub in getattr(importlib.import_module(module_name), "SUBCOMMANDS", ()):
            walk(f"{name} {sub}", capture(module_name, [sub]))
    return found


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """The option strings a parser accepts (`--help` included)."""
    return {s for a in parser._actions for s in a.option_strings}


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(parser.prog, width=WIDTH, max_help_position=40)


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction)):
        return ""
    if action.default in (None, argparse.SUPPRESS):
        return ""
    # a default inside the checkout (e.g. the shipped rules file) is shown relative to it, as a reader's is
    return f"`{_cell(action.default).replace(str(ROOT) + os.sep, '')}`"


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _anchor(path: str) -> str:
    return "#tollgate-" + path.replace(" ", "-")


def section(path: str, parser: argparse.ArgumentParser, children: list[str]) -> str:
    """One command's part of the page: description, usage, a table of its arguments, its subcommands."""
    formatter = _formatter(parser)
    lines = [f"## tollgate {path}", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    lines += ["```text", _usage(parser), "```", ""]
    if path in FORWARDS_TO:
        target = FORWARDS_TO[path]
        lines += [
            f"Flags not listed here go to `tollgate {target}` (see [tollgate {target}]({_anchor(target)})).",
            "",
        ]
    lines += ["| argument | value | default | help |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        if action.choices and not isinstance(action.choices, dict):
            value = "{" + ",".join(str(c) for c in action.choices) + "}"
        elif action.nargs == 0:
            value = ""
        else:
            default_metavar = (
                formatter._get_default_metavar_for_optional(action)
                if action.option_strings
                else formatter._get_default_metavar_for_positional(action)
            )
            value = formatter._format_args(action, default_metavar)
        help_ = formatter._expand_help(action) if action.help else ""
        lines.append(f"| {name} | {_cell(value)} | {_default(action)} | {_cell(help_)} |")
    if children:
        lines += [
            "",
            "Subcommands: " + ", ".join(f"[`{c.rsplit(' ', 1)[1]}`]({_anchor(c)})" for c in children),
        ]
    return "\n".join(lines)


def render() -> str:
    found = parsers()
    head = [
        "# CLI reference",
        "",
        "Generated from the argparse parsers by `make docs` (`python -m tollgate.docgen`); do not edit by hand.",
        "",
        "Commands: " + ", ".join(f"[`{p}`]({_anchor(p)})" for p in found),
        "",
        "",
    ]
    sections = [
        section(p, parser, [c for c in found if c.rsplit(" ", 1)[0] == p and c != p])
        for p, parser in found.items()
    ]
    return "\n".join(head) + "\n\n".join(sections) + "\n"


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with what lies between its `<!-- section:NAME -->` markers replaced by `body`."""
    begin, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} markers: add them where the table belongs")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Put `body` between the `name` markers of `path` (docs/benchmarks.md); only that section changes."""
    path.write_text(replace_section(path.read_text(), name, body))


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(prog="python -m tollgate.docgen", description=__doc__.splitlines()[0])
    args.add_argument("--check", action="store_true", help="exit 1 when docs/reference/cli.md is stale")
    opts = args.parse_args(argv)
    text = render()
    if opts.check:
        if not CLI_MD.exists() or CLI_MD.read_text() != text:
            print(f"{CLI_MD} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    CLI_MD.parent.mkdir(parents=True, exist_ok=True)
    CLI_MD.write_text(text)
    print(f"wrote {CLI_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

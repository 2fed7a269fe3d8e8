"""The docs and the CLI agree: docs/reference/cli.md is what `make docs` generates now, every flag a guide or the
README shows on a `tollgate <command>` line exists on that command's parser, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tollgate import docgen

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
GUIDES = [p for p in DOCS if p != docgen.CLI_MD]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:^|[\s(/$])tollgate\s+([a-z][\w-]*)((?:\s+[^\s;&#]+)*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def parsers() -> dict:
    return docgen.parsers()


def command_snippets(markdown: str) -> list[str]:
    """Text that may hold a `tollgate ...` command line: code-block lines (`\\` continuations and indented
    synopsis lines joined, comments dropped, inline code inside comments kept) and inline code spans of the prose."""
    snippets = []
    for block in FENCE.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            comment = re.search(r"(?:^|\s)#", line)
            code, rest = (line[: comment.start()], line[comment.end() :]) if comment else (line, "")
            if code[:1].isspace() and snippets and "tollgate" in snippets[-1]:
                snippets[-1] += code  # a usage synopsis continued on an indented line
            else:
                snippets.append(code)
            snippets += INLINE.findall(rest)
    snippets += INLINE.findall(FENCE.sub("", markdown))
    return snippets


def documented_flags(markdown: str, parsers: dict) -> list[tuple[str, str]]:
    """(command path, flag) for every long flag written after `tollgate <command> [subcommand...]`."""
    found = []
    for snippet in command_snippets(markdown):
        for match in COMMAND.finditer(snippet):
            if match.group(1) not in docgen.COMMANDS:
                continue
            path, words = match.group(1), match.group(2).split()
            while words and f"{path} {words[0]}" in parsers:
                path = f"{path} {words.pop(0)}"
            found += [(path, flag) for word in words for flag in FLAG.findall(word.split("=")[0])]
    return found


def accepted(path: str, parsers: dict) -> set[str]:
    """Flags `tollgate <path>` takes: its own, those it hands on (sweep, ab -> load), and, for a command shown
    without its subcommand (`tollgate drift ... --window`), those of its subcommands."""
    flags = docgen.flags(parsers[path])
    if path in docgen.FORWARDS_TO:
        flags |= docgen.flags(parsers[docgen.FORWARDS_TO[path]])
    for other, parser in parsers.items():
        if other.startswith(path + " "):
            flags |= docgen.flags(parser)
    return flags


def unknown_flags(markdown: str, parsers: dict) -> list[str]:
    return sorted(
        {f"tollgate {p} {f}" for p, f in documented_flags(markdown, parsers) if f not in accepted(p, parsers)}
    )


def test_cli_reference_is_what_the_generator_writes_now() -> None:
    assert docgen.CLI_MD.exists(), "docs/reference/cli.md is missing: run `make docs`"
    assert docgen.CLI_MD.read_text() == docgen.render(), (
        "docs/reference/cli.md differs from the parsers (a flag added, removed or changed): run `make docs`"
    )


def test_cli_reference_lists_every_flag_of_every_command(parsers: dict) -> None:
    text = docgen.CLI_MD.read_text()
    sections = dict(re.findall(r"^## tollgate (.+?)\n(.*?)(?=^## |\Z)", text, re.S | re.M))
    assert set(sections) == set(parsers), (
        "docs/reference/cli.md has other commands than the CLI: run `make docs`"
    )
    missing = [
        f"tollgate {p} {f}"
        for p, parser in parsers.items()
        for f in docgen.flags(parser)
        if f"`{f}`" not in sections[p]
    ]
    assert not missing, f"not in docs/reference/cli.md: {missing}; run `make docs`"


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_flag_exists(page: Path, parsers: dict) -> None:
    bad = unknown_flags(page.read_text(), parsers)
    assert not bad, (
        f"{page.relative_to(ROOT)} shows flags the CLI does not have: {bad} (fix the page or the CLI)"
    )


def test_the_flag_check_finds_a_bogus_flag(parsers: dict) -> None:
    page = (
        "Run `tollgate load --url U --bogus-flag 1` or\n\n```bash\ntollgate drift check --profile p \\\n"
        "  --no-such-thing x   # `tollgate gate --slo s --nope`\ntollgate sweep --rates 1,2 --users 4\n"
        "tollgate serve --model M\n         [--not-a-serve-flag]\n```\n"
        "Not commands: `--model tiny`, `python -m bench server --update-readme`, tollgate_drift_score --x.\n"
    )
    assert unknown_flags(page, parsers) == [
        "tollgate drift check --no-such-thing",
        "tollgate gate --nope",
        "tollgate load --bogus-flag",
        "tollgate serve --not-a-serve-flag",
    ]
    assert ("sweep", "--users") in documented_flags(page, parsers)  # handed on to load: accepted


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), re.M)}


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_benchmark_tables_have_their_sections_in_docs() -> None:
    """bench/server.py (`--update-docs`) and tests/reliability/table.py write between these markers."""
    text = docgen.BENCHMARKS_MD.read_text()
    for name in ("bench-server", "reliability"):
        replaced = docgen.replace_section(text, name, "NEW TABLE")
        assert f"<!-- section:{name} -->\nNEW TABLE\n<!-- /section:{name} -->" in replaced
        assert replaced.count("NEW TABLE") == 1 and "Benchmarks" in replaced.split("NEW TABLE")[0]
    with pytest.raises(ValueError, match="no <!-- section:nowhere -->"):
        docgen.replace_section(text, "nowhere", "x")
    assert "section:" not in (ROOT / "README.md").read_text(), (
        "tables belong in docs/benchmarks.md, not README.md"
    )


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_command_lists_name_every_command(page: str) -> None:
    text = (ROOT / page).read_text()
    listed = set(re.findall(r"^tollgate ([a-z]+) {2,}", text, re.M))
    assert listed == set(docgen.COMMANDS), f"{page}'s command list differs from tollgate/cli.py COMMANDS"


# Flags of other tools that user pages mention in prose (not `tollgate` flags).
OTHER_TOOLS_FLAGS = {"--goodput": "vLLM bench serve", "--enforce-eager": "vLLM serve"}
OTHER_COMMAND = re.compile(r"\b(python|locust|pytest|pip|make|vllm|curl|promtool|streamlit|bench)\b")
USER_PAGES = [
    p
    for p in GUIDES
    if p.parent.name in ("guides", "reference") or p.name in ("README.md", "getting-started.md")
]


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_flags_named_in_prose_exist_on_some_command(page: Path, parsers: dict) -> None:
    """A bare `--flag` in the prose of a user page (no command in front) is still some tollgate command's flag."""
    known = set().union(*(docgen.flags(p) for p in parsers.values()), OTHER_TOOLS_FLAGS)
    spans = [s for s in INLINE.findall(FENCE.sub("", page.read_text())) if not OTHER_COMMAND.search(s)]
    bad = sorted({f for s in spans for f in FLAG.findall(s)} - known)
    assert not bad, f"{page.relative_to(ROOT)} names flags no tollgate command has: {bad}"

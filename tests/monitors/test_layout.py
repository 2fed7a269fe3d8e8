"""The monitors package imports one way: no module reaches back into one that imports it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import monitors

PACKAGE = Path(monitors.__file__).parent
ARCHITECTURE = PACKAGE.parent / "docs" / "design" / "architecture.md"


def _imports(path: Path) -> set[str]:
    """Modules of the package that `path` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "monitors":
                found |= {f"monitors.{a.name}" for a in node.names}
            elif node.module.startswith("monitors."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("monitors.")}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a path that starts and ends at the same module, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        for dep in sorted(graph.get(module, ())):
            if found := visit(dep, [*path, module]):
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        if found := visit(module, []):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_monitors_imports_run_one_way():
    graph = {f"monitors.{p.stem}": _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert "monitors.alert" in graph["monitors.slack"], "the renderers take the alert model from its home"
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def _documented_order() -> list[str]:
    """The modules of architecture.md's 'Inside monitors' block, top to bottom."""
    block = ARCHITECTURE.read_text().split("### Inside monitors", 1)[1].split("```")[1]
    order = []
    for line in block.strip().splitlines():
        names = re.match(r"([\w., ]+?)\s{2,}", line).group(1)
        order += [f"monitors.{n.strip().removesuffix('.py')}" for n in names.split(",")]
    return order


def test_architecture_doc_lists_every_module_above_what_it_imports():
    order = _documented_order()
    modules = {f"monitors.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert set(order) == modules, f"architecture.md 'Inside monitors': add {modules - set(order)}"
    for i, module in enumerate(order):
        path = PACKAGE / f"{module.split('.', 1)[1]}.py"
        above = _imports(path) - set(order[i + 1 :])
        assert not above, f"{module} imports {above}, listed above it in architecture.md: reorder the block"


def test_the_alert_model_has_one_home():
    from monitors import alert, notify, slack, webhook

    assert notify.Alert is slack.Alert is webhook.Alert is alert.Alert
    assert alert.Alert.__module__ == "monitors.alert"

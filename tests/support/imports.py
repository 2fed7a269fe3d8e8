"""The repository's imports read statically with `ast` (nothing is imported): for the layout tests.

Every `import` and `from ... import` counts, at the top of a module, inside a function or under
`if TYPE_CHECKING:`: a dependency deferred for start-up time is still a dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Import:
    """One imported module: `from a import b` names the module `a.b` when `a/b.py` exists, else `a` with `names=("b",)`."""

    path: Path
    line: int
    module: str
    names: tuple[str, ...] = ()
    statement: str = ""  # the import as written

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"

    @property
    def text(self) -> str:
        if self.statement:
            return self.statement
        return f"from {self.module} import {', '.join(self.names)}" if self.names else f"import {self.module}"


def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    """`monitors/store.py` -> `monitors.store`; a package's `__init__.py` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str, root: Path) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, root: Path = REPO_ROOT) -> list[Import]:
    """Every module `path` imports, in file order."""
    importer = module_name(path, root)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, a.name, statement=ast.unparse(node)) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, importer, path.name == "__init__.py")
            names = []
            for alias in node.names:
                if _is_module(f"{source}.{alias.name}", root):
                    found.append(
                        Import(path, node.lineno, f"{source}.{alias.name}", statement=ast.unparse(node))
                    )
                else:
                    names.append(alias.name)
            if names:
                found.append(Import(path, node.lineno, source, tuple(names), ast.unparse(node)))
    return sorted(found, key=lambda i: i.line)


def package_files(package: str, root: Path = REPO_ROOT) -> list[Path]:
    """The modules of `package`, its subpackages included."""
    return sorted((root / package).rglob("*.py"))


def package_graph(package: str, root: Path = REPO_ROOT) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports."""
    graph = {}
    for path in package_files(package, root):
        inside = {i.module for i in imports_of(path, root) if i.module.split(".")[0] == package}
        graph[module_name(path, root)] = inside - {module_name(path, root)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
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

"""Imports run one way: the rules of docs/design/architecture.md ("Import rules"), read statically.

Each package is free of import cycles, and every import of every module (at the top, inside a
function or under TYPE_CHECKING) keeps to the component rules. A failure names file:line, the
import and the rule it breaks.
"""

from __future__ import annotations

import sys

import pytest

from tests.support.imports import (
    REPO_ROOT,
    Import,
    find_cycle,
    imports_of,
    module_name,
    package_files,
    package_graph,
)

COMPONENTS = ("loadgen", "monitors", "drift", "proxy", "release", "dashboards", "reference_server")
PACKAGES = (*COMPONENTS, "tollgate", "bench")
PROJECT = {*PACKAGES, "tests"}
CONTRACTS = "tollgate.contracts"

# Exceptions stated in architecture.md, each with its reason there.
RELEASE_USES = {  # module of loadgen -> the names release may take from it (None: any public name)
    "loadgen.cli": None,  # the public run API: build_parser, make_config, run_load, check_run_dir, ...
    "loadgen.config": {"RunConfig"},  # the typed config make_config returns
    "loadgen.gate": {"load_run", "InvalidRun"},  # the run-folder reader the gate and the A/B share
}
SAMPLE_DATA = {"dashboards.sample_data", "dashboards.sample_drift", "dashboards.sample_store"}
CONTRACTS_LAZY = {"tollgate.contracts.run_folder": {"pandas", "pyarrow"}}  # read_requests, imported inside it
VERSION = Import(REPO_ROOT, 0, "tollgate", ("__version__",))  # tollgate/__init__.py holds only the version


def _top(module: str) -> str:
    return module.split(".")[0]


def _is_contracts(module: str) -> bool:
    return module == CONTRACTS or module.startswith(CONTRACTS + ".")


def _contracts_rule(importer: str, imp: Import) -> str | None:
    top = _top(imp.module)
    if _is_contracts(imp.module) or top in sys.stdlib_module_names or top == "numpy":
        return None
    if top in CONTRACTS_LAZY.get(importer, ()):
        return None
    return "tollgate.contracts imports only the standard library, numpy and itself"


def _release_rule(imp: Import) -> str | None:
    if imp.module not in RELEASE_USES:
        return "release uses loadgen only through loadgen.cli's public functions (and RunConfig, load_run)"
    allowed = RELEASE_USES[imp.module]
    names = set(imp.names)
    if allowed is None and not any(n.startswith("_") for n in names):
        return None
    if allowed is not None and names and names <= allowed:
        return None
    return f"release takes from {imp.module} only {sorted(allowed) if allowed else 'public names'}"


def _component_rule(importer: str, imp: Import) -> str | None:
    own, top = _top(importer), _top(imp.module)
    if top not in PROJECT or top == own or _is_contracts(imp.module):
        return None
    if top == "tollgate":
        if imp.module == VERSION.module and imp.names and set(imp.names) <= set(VERSION.names):
            return None
        return "components never import the CLI package tollgate (only tollgate.contracts and tollgate.__version__)"
    if top in ("tests", "bench"):
        return f"components never import {top}"
    if "reference_server" in (own, top):
        return "the reference server and the other components import nothing from each other"
    if own == "release" and top == "loadgen":
        return _release_rule(imp)
    if importer in SAMPLE_DATA:
        return None  # the sample data sits above the components, like `tollgate demo`
    return "components talk only through tollgate.contracts"


def _above_rule(importer: str, imp: Import) -> str | None:
    """The CLI and the benchmarks sit above the components; neither depends on test code."""
    if imp.module.startswith("tests.support.") and _top(importer) == "bench":
        return None  # real servers and receivers for the benchmarks, shared with the tests
    if _top(imp.module) == "tests":
        return f"{_top(importer)} never imports test code (bench may use tests.support)"
    if _top(importer) == "tollgate" and _top(imp.module) == "bench":
        return "the CLI never imports the benchmarks"
    return None


def rule_broken(importer: str, imp: Import) -> str | None:
    """The rule of architecture.md that `importer` importing `imp` breaks, or None."""
    if _is_contracts(importer):
        return _contracts_rule(importer, imp)
    if _top(importer) in COMPONENTS:
        return _component_rule(importer, imp)
    return _above_rule(importer, imp)


def violations(package: str) -> list[str]:
    found = []
    for path in package_files(package):
        importer = module_name(path)
        for imp in imports_of(path):
            if rule := rule_broken(importer, imp):
                found.append(f"{imp.where}: `{imp.text}` breaks the rule: {rule}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_the_package(package):
    cycle = find_cycle(package_graph(package))
    assert cycle is None, f"import cycle in {package}: {' -> '.join(cycle)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_keep_to_the_component_rules(package):
    found = violations(package)
    assert not found, "architecture.md 'Import rules':\n" + "\n".join(found)


def _rule(importer: str, source: str) -> str | None:
    text = source.removeprefix("from ").removeprefix("import ")
    module, _, names = text.partition(" import ")
    return rule_broken(importer, Import(REPO_ROOT, 1, module, tuple(filter(None, names.split(", ")))))


def test_each_rule_catches_a_bad_import():
    assert "talk only through" in _rule("proxy.app", "from loadgen import sse")
    assert "talk only through" in _rule("drift.watch", "import monitors.notify")
    assert "reference server" in _rule("reference_server.engine", "from loadgen.tokens import count")
    assert "reference server" in _rule("dashboards.sample_data", "import reference_server.model")
    assert "CLI package" in _rule("loadgen.report", "from tollgate.cli import main")
    assert "only the standard library" in _rule("tollgate.contracts.figures", "import pandas")
    assert "only the standard library" in _rule("tollgate.contracts.figures", "from loadgen import report")
    assert "RunConfig, load_run" in _rule("release.ab_cli", "from loadgen.report import write_run")
    assert "only ['InvalidRun', 'load_run']" in _rule("release.ab_cli", "from loadgen.gate import gate")
    assert "public names" in _rule("release.ab_cli", "from loadgen.cli import _locust_argv")
    assert "never imports test code" in _rule("bench.monitors", "from tests.monitors.helpers import stop")
    assert "never import tests" in _rule("monitors.cli", "from tests.support.servers import free_port")


def test_the_stated_exceptions_hold():
    assert _rule("loadgen.report", "from tollgate import __version__") is None
    assert _rule("release.ab_cli", "from loadgen.gate import InvalidRun, load_run") is None
    assert _rule("dashboards.sample_store", "from monitors.store import Store") is None
    assert _rule("tollgate.contracts.run_folder", "import pyarrow.parquet") is None
    assert _rule("bench.monitors", "from tests.support.processes import receiver") is None
    assert _rule("tollgate.demo", "from monitors.cli import main") is None
    assert _rule("loadgen.report", "import tollgate") is not None
    assert not imports_of(REPO_ROOT / "tollgate" / "__init__.py"), (
        "tollgate/__init__.py holds the version only"
    )


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None

"""The monitors package imports one way: no module reaches back into one that imports it."""

from __future__ import annotations

import re

from tests.support.imports import REPO_ROOT, find_cycle, package_graph

ARCHITECTURE = REPO_ROOT / "docs" / "design" / "architecture.md"


def _graph() -> dict[str, set[str]]:
    """The package's modules (its __init__ aside) and the modules of the package each imports."""
    graph = package_graph("monitors")
    graph.pop("monitors")
    return graph


def test_monitors_imports_run_one_way():
    graph = _graph()
    assert "monitors.alert" in graph["monitors.slack"], "the renderers take the alert model from its home"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


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
    graph = _graph()
    assert set(order) == set(graph), f"architecture.md 'Inside monitors': add {set(graph) - set(order)}"
    for i, module in enumerate(order):
        above = graph[module] - set(order[i + 1 :])
        assert not above, f"{module} imports {above}, listed above it in architecture.md: reorder the block"


def test_the_alert_model_has_one_home():
    from monitors import alert, notify, slack, webhook

    assert notify.Alert is slack.Alert is webhook.Alert is alert.Alert
    assert alert.Alert.__module__ == "monitors.alert"

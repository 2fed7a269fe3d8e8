"""The per-metric table `tollgate ab` and `tollgate canary` print (rich, loaded only when a table is printed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def share(value: float | None) -> str:
    """A signed relative shift, e.g. +12.5%."""
    return "-" if value is None else f"{value:+.1%}"


def signed(value: float | None) -> str:
    """A signed effect size (Cliff's delta, rank-biserial), e.g. -0.31."""
    return "-" if value is None else f"{value:+.2f}"


def print_metric_table(
    title: str, columns: Sequence[str], left: int, rows: Iterable[Sequence[str]], notes: Iterable[str]
) -> None:
    """The table (its first `left` columns left-aligned, the figures right-aligned), then one line per note."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note)

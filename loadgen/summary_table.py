"""The run's summary as a table on stdout (the run folder's path follows it as the last line)."""

from __future__ import annotations

from typing import Any


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['run_id']}: {summary['status']}")
    for column in ("metric", "p50", "p90", "p99", "mean", "count"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for name, block in summary.get("metrics", {}).items():
        table.add_row(name, *[_fmt(block.get(k)) for k in ("p50", "p90", "p99", "mean", "count")])
    console = Console(stderr=False)
    console.print(table)
    req, thr = summary["requests"], summary["throughput"]
    console.print(
        f"completed {req['completed']}  failed {req['failed']}  incomplete {req.get('incomplete', 0)}  {thr['requests_per_s']:.2f} req/s  "
        f"{thr['output_tokens_per_s']:.1f} tok/s  client_bound={summary['validity']['client_bound']}"
    )
    for turn, block in summary.get("turns", {}).items():
        console.print(
            f"  turn {turn}: {block['requests']} requests, prompt {_fmt(block['prompt_tokens_mean'])} tokens, "
            f"TTFT p50 {_fmt(block['ttft_ms']['p50'])} p99 {_fmt(block['ttft_ms']['p99'])} ms"
        )
    for reason, count in summary.get("errors", {}).items():
        console.print(f"  error x{count}: {reason}")


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))

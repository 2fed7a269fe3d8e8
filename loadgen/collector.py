"""Per-process results: request rows and full-resolution histograms, shipped worker -> master.

A worker `drain()`s what it measured since its last report (rows plus histogram deltas) into
Locust's worker->master messages; the master `absorb()`s them. A local (single process) run
records straight into the master-side collector.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from loadgen.histogram import Histogram
from loadgen.timeline import RequestRecord

METRICS = (
    "ttft_ms",
    "itl_ms",
    "tpot_ms",
    "e2e_ms",
    "ttft_from_intended_ms",
    "e2e_from_intended_ms",
    "client_queue_ms",
)


class Collector:
    def __init__(self) -> None:
        self.histograms = {name: Histogram() for name in METRICS}
        self.rows: list[dict[str, Any]] = []
        self.warnings: Counter[str] = Counter()

    def add(self, record: RequestRecord) -> dict[str, Any]:
        row = self.record(record)
        self.rows.append(row)
        return row

    def record(self, record: RequestRecord) -> dict[str, Any]:
        """Fold a request into the histograms and warnings (not into `rows`); returns its row."""
        itl = record.itl_ms()
        row = record.row(itl)
        if record.ok:
            for name in ("ttft_ms", "tpot_ms", "e2e_ms", "ttft_from_intended_ms", "e2e_from_intended_ms"):
                self.histograms[name].record(row[name])
            self.histograms["itl_ms"].record_many(itl)
            if row["output_tokens_estimated"]:
                self.warnings["missing usage: output tokens estimated"] += 1
        self.histograms["client_queue_ms"].record(row["client_queue_ms"])
        return row

    def drain(self) -> dict[str, Any]:
        data = {
            "rows": self.rows,
            "histograms": {name: h.to_dict() for name, h in self.histograms.items() if h.count},
            "warnings": dict(self.warnings),
        }
        self.__init__()
        return data

    def absorb(self, data: dict[str, Any]) -> None:
        self.rows.extend(data.get("rows", []))
        for name, hist in data.get("histograms", {}).items():
            self.histograms[name].merge(Histogram.from_dict(hist))
        self.warnings.update(data.get("warnings", {}))

"""The final write in bounded memory: rows stream from requests.partial.jsonl to requests.parquet in
fixed-size batches, and the summary's row figures are folded in on the way (RowStats).

A 24-hour soak at 50 req/s is 4.3 M rows; the final write never holds more than one batch of them.
Latency percentiles come from mergeable histograms (loadgen.histogram, <=0.78% relative error);
counts, sums, lengths and the send window are exact.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.histogram import Histogram
from loadgen.timeline import INCOMPLETE
from tollgate.contracts.run_folder import INCOMPLETE_PREFIX, LENGTH_KEYS, REQUEST_TYPES

BATCH_ROWS = 10_000  # rows per parquet row group; a batch of 64-token rows is ~80 MB as Python objects
CDF_COLUMNS = ("ttft_ms", "tpot_ms", "itl_mean_ms", "e2e_ms", "ttft_from_intended_ms")
SCATTER_POINTS = 20_000  # report.html's latency-over-time scatter: a uniform sample of completed requests
NAN = float("nan")


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a line torn by a kill is skipped."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                yield row


def _num(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return NAN if value is None else float(value)


def _int(row: dict[str, Any], key: str) -> int:
    value = row.get(key)
    return -1 if value is None else int(value)  # -1: not known, as the rows say it


def arrow_schema() -> Any:
    import pyarrow as pa

    scalar = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}

    def arrow(kind: str) -> Any:
        return pa.list_(scalar[kind[5:-1]]) if kind.startswith("list<") else scalar[kind]

    return pa.schema([(name, arrow(kind)) for name, kind in REQUEST_TYPES.items()])


def _arrow_batch(rows: list[dict[str, Any]], schema: Any) -> Any:
    import pyarrow as pa

    columns = {}
    for field in schema:
        values = [row.get(field.name) for row in rows]
        if pa.types.is_floating(field.type):  # NaN stays NaN (as pandas wrote it), None becomes NaN
            values = [NAN if v is None else v for v in values]
        columns[field.name] = pa.array(values, type=field.type)
    table = pa.table(columns, schema=schema)
    return table.sort_by("send_s")


class RequestsWriter:
    """requests.parquet (or requests.csv without pyarrow) written batch by batch, then renamed into place."""

    def __init__(self, run_dir: Path) -> None:
        try:
            import pyarrow.parquet as pq

            self.schema = arrow_schema()
            self.path = run_dir / "requests.parquet"
            self._tmp = run_dir / ".requests.parquet.tmp"
            self._parquet = pq.ParquetWriter(self._tmp, self.schema)
        except ImportError:
            self.path = run_dir / "requests.csv"
            self._tmp = run_dir / ".requests.csv.tmp"
            self._parquet = None
            self._csv = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed in close())
            self._header = True
        self.batch: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.batch.append(row)
        if len(self.batch) >= BATCH_ROWS:
            self._write_batch()

    def _write_batch(self) -> None:
        if self._parquet is not None:
            if self.batch:
                self._parquet.write_table(_arrow_batch(self.batch, self.schema))
        elif self.batch or self._header:
            import pandas as pd

            frame = pd.DataFrame(self.batch, columns=list(REQUEST_TYPES))
            frame.sort_values("send_s", kind="stable").to_csv(self._csv, header=self._header, index=False)
            self._header = False
        self.batch = []

    def close(self) -> None:
        self._write_batch()
        if self._parquet is not None:
            self._parquet.close()
        else:
            self._csv.close()
        os.replace(self._tmp, self.path)


class CountDistribution:
    """Exact distribution of integer values (token lengths) as value -> count: few distinct values."""

    def __init__(self) -> None:
        self.counts: Counter[float] = Counter()

    def add(self, value: float) -> None:
        self.counts[value] += 1

    def block(self) -> dict[str, Any]:
        """LENGTH_KEYS with numpy's default (linear) percentiles, computed from the counts."""
        n = sum(self.counts.values())
        if not n:
            return {key: None for key in LENGTH_KEYS} | {"count": 0}
        values = np.array(sorted(self.counts), dtype=float)
        cum = np.cumsum([self.counts[v] for v in values])

        def at(rank: int) -> float:  # the value at 0-based rank of the sorted sample
            return float(values[int(np.searchsorted(cum, rank, side="right"))])

        def percentile(q: float) -> float:
            h = (n - 1) * q / 100.0
            lo = math.floor(h)
            low = at(lo)
            return low + (h - lo) * (at(min(lo + 1, n - 1)) - low)

        mean = float(sum(v * c for v, c in self.counts.items()) / n)
        stats = {"mean": mean, "p50": percentile(50), "p99": percentile(99), "count": n}
        return {key: stats[key] for key in LENGTH_KEYS}


class TurnStats:
    def __init__(self) -> None:
        self.ttft, self.e2e = Histogram(), Histogram()
        self.requests = 0
        self.prompt_total, self.prompt_count = 0.0, 0


class RowStats:
    """Every figure the summary and report.html take from the rows, folded in one row at a time."""

    def __init__(self, slo: dict[str, float], tail: int = 3) -> None:
        self.slo = slo
        self.sent = self.completed = self.good = self.estimated = 0
        self.output_tokens = self.prompt_tokens = 0.0
        self.errors: Counter[str] = Counter()
        self.sends, self.send_min, self.send_max = 0, math.inf, -math.inf
        self.lengths = {
            name: CountDistribution() for name in ("in_req", "in_got", "out_req", "out_got", "template")
        }
        self.turns: dict[int, TurnStats] = {}
        self.cdf = {name: Histogram() for name in CDF_COLUMNS}
        self.completed_by_s: Counter[int] = Counter()
        self.tokens_by_s: Counter[int] = Counter()
        self.in_flight_delta: Counter[int] = Counter()
        self.end_max = -math.inf
        self.scatter: list[tuple[float, float, float]] = []
        self._rng = random.Random(0)
        self._tail = tail
        self._last: list[tuple[float, int, bool, int]] = []  # the `tail` finished rows sent last

    def add(self, row: dict[str, Any]) -> None:
        self.sent += 1
        ok = bool(row.get("ok"))
        send, end = _num(row, "send_s"), _num(row, "end_s")
        if send == send:
            self.sends += 1
            self.send_min, self.send_max = min(self.send_min, send), max(self.send_max, send)
            if end == end:
                self.in_flight_delta[math.ceil(send)] += 1
                self.in_flight_delta[math.ceil(end)] -= 1
        if end == end:
            self.end_max = max(self.end_max, end)
        error = str(row.get("error") or "")
        if not error.startswith(INCOMPLETE_PREFIX):
            entry = (send if send == send else math.inf, self.sent, ok, int(row.get("status") or 0))
            heapq.heappush(self._last, entry)
            if len(self._last) > self._tail:
                heapq.heappop(self._last)
        if ok and all(_num(row, m) != _num(row, m) or _num(row, m) <= limit for m, limit in self.slo.items()):
            self.good += 1
        if not ok:
            self.errors[error] += 1
            return
        self._add_completed(row, send, end)

    def _add_completed(self, row: dict[str, Any], send: float, end: float) -> None:
        self.completed += 1
        tokens = float(row.get("output_tokens") or 0)
        prompt = _int(row, "prompt_tokens")
        estimated = bool(row.get("output_tokens_estimated"))
        self.output_tokens += tokens
        self.estimated += estimated
        if prompt >= 0:
            self.prompt_tokens += prompt
        requested_in = _int(row, "requested_input_tokens")
        requested_out = _int(row, "requested_output_tokens")
        if requested_in >= 0 and prompt >= 0:
            self.lengths["in_req"].add(requested_in)
            self.lengths["in_got"].add(prompt)
            self.lengths["template"].add(prompt - requested_in)
        if requested_out >= 0 and not estimated:
            self.lengths["out_req"].add(requested_out)
            self.lengths["out_got"].add(tokens)
        for name in CDF_COLUMNS:
            self.cdf[name].record(_num(row, name))
        if end == end:
            self.completed_by_s[math.floor(end)] += 1
            self.tokens_by_s[math.floor(end)] += tokens
        turn = int(row.get("turn") or 0)
        if turn > 0:
            stats = self.turns.setdefault(turn, TurnStats())
            stats.requests += 1
            stats.ttft.record(_num(row, "ttft_ms"))
            stats.e2e.record(_num(row, "e2e_ms"))
            if prompt >= 0:
                stats.prompt_total += prompt
                stats.prompt_count += 1
        point = (send, _num(row, "ttft_ms"), _num(row, "tpot_ms"))
        if len(self.scatter) < SCATTER_POINTS:  # reservoir sampling (Vitter's algorithm R)
            self.scatter.append(point)
        else:
            slot = self._rng.randrange(self.completed)
            if slot < SCATTER_POINTS:
                self.scatter[slot] = point

    def server_went_away(self) -> bool:
        """The `tail` finished requests sent last all failed without an HTTP answer (see report)."""
        return len(self._last) == self._tail and all(
            not ok and status == 0 for _, _, ok, status in self._last
        )

    def incomplete(self) -> int:
        return self.errors.get(INCOMPLETE, 0)

    def achieved_rate(self) -> float | None:
        """Requests actually sent per second between the first and the last send: (n - 1) / span."""
        span = self.send_max - self.send_min if self.sends > 1 else 0.0
        return (self.sends - 1) / span if span > 0 else None


def fold(rows: Iterable[dict[str, Any]], stats: RowStats, writer: RequestsWriter) -> None:
    for row in rows:
        stats.add(row)
        writer.add(row)

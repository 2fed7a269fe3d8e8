"""SLO files for `tollgate gate` and `tollgate sweep` (TOML), read with line-precise errors.

[goodput]                 # per-request limits (ms) that define goodput, as vLLM's --goodput
ttft_ms = 500
tpot_ms = 50

[[check]]
metric = "ttft_ms"        # a metrics.<name> block of summary.json ...
percentile = "p99"        # p50 p90 p95 p99 p999 mean
max = 800
[[check]]
metric = "error_rate"     # ... or error_rate, goodput, goodput_fraction, throughput.<key>
max = 0.01

[baseline]
tolerance = 0.10          # relative change allowed before a regression can fail the gate
confidence = 0.95
method = "bootstrap"      # or "mannwhitney"

[quality]                 # output quality of --candidate-url vs --baseline-url (loadgen/quality.py)
min_agreement = 0.95      # mean greedy agreement over the prompt set (1.0 = identical outputs)
max_logprob_diff = 0.05   # mean |candidate - baseline| logprob of the same tokens, nats
max_tokens = 64           # greedy tokens per prompt
prompts = "prompts.txt"   # optional, relative to this file: one prompt per line; default 20 built in
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9, "mean": None}
SCALAR_METRICS = ("error_rate", "goodput", "goodput_fraction")
GOODPUT_METRICS = (
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "itl_mean_ms",
    "ttft_from_intended_ms",
    "e2e_from_intended_ms",
)
CHECK_HEADER = r"\[\[check\]\]"
BASELINE_HEADER = r"\[baseline\]"
QUALITY_HEADER = r"\[quality\]"
ASSIGN = r"\s*="


class SLOError(ValueError):
    """The SLO file is wrong; the message says file:line, what, and how to fix it."""


@dataclass
class Check:
    metric: str
    percentile: str | None
    max: float | None
    min: float | None
    line: int

    @property
    def name(self) -> str:
        return f"{self.metric}.{self.percentile}" if self.percentile else self.metric


@dataclass
class QualitySLO:
    """Thresholds of the quality check; None = report the figure without judging it."""

    min_agreement: float | None = None
    max_logprob_diff: float | None = None
    max_tokens: int = 64
    prompts: Path | None = None
    line: int = 1


@dataclass
class SLO:
    path: str
    checks: list[Check] = field(default_factory=list)
    goodput: dict[str, float] = field(default_factory=dict)
    tolerance: float = 0.10
    confidence: float = 0.95
    method: str = "bootstrap"
    quality: QualitySLO | None = None  # the [quality] section, when the file has one


def _line_of(text: str, pattern: str, occurrence: int = 0) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if re.match(pattern, line.strip())]
    return lines[occurrence] if occurrence < len(lines) else 1


def load_slo(path: str | Path) -> SLO:
    path = Path(path)
    if not path.is_file():
        raise SLOError(f"{path}: SLO file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise SLOError(f"{path}:{match.group(1) if match else 1}: not valid TOML ({exc})") from None
    known = {"goodput", "check", "baseline", "quality"}
    for key in data:
        if key not in known:
            line = _line_of(text, r"\[*" + re.escape(key))
            raise SLOError(
                f"{path}:{line}: unknown section '{key}'; use [goodput], [[check]], [baseline], [quality]"
            )
    slo = SLO(str(path))
    goodput = data.get("goodput", {})
    if not isinstance(goodput, dict):
        raise SLOError(
            f"{path}:{_line_of(text, 'goodput')}: 'goodput' must be a table: [goodput] ttft_ms = 500"
        )
    for key, value in goodput.items():
        where = f"{path}:{_line_of(text, re.escape(key) + ASSIGN)}"
        if key not in GOODPUT_METRICS:
            raise SLOError(f"{where}: [goodput] key '{key}' unknown; use one of {', '.join(GOODPUT_METRICS)}")
        if not _is_number(value) or value <= 0:
            raise SLOError(f"{where}: [goodput] {key} must be a positive number of milliseconds")
        slo.goodput[key] = float(value)
    checks = data.get("check", [])
    if not isinstance(checks, list):
        raise SLOError(f"{path}:{_line_of(text, 'check')}: write checks as [[check]] tables")
    for i, raw in enumerate(checks):
        line = _line_of(text, CHECK_HEADER, i)
        slo.checks.append(_check(raw, f"{path}:{line}", line))
    base = data.get("baseline", {})
    where = f"{path}:{_line_of(text, BASELINE_HEADER)}"
    slo.tolerance = (
        float(base.get("tolerance", slo.tolerance)) if _is_number(base.get("tolerance", 0.1)) else -1
    )
    slo.confidence = (
        float(base.get("confidence", slo.confidence)) if _is_number(base.get("confidence", 0.95)) else -1
    )
    slo.method = str(base.get("method", slo.method))
    if slo.tolerance < 0:
        raise SLOError(f"{where}: [baseline] tolerance must be a number >= 0 (0.10 means 10%)")
    if not 0.5 <= slo.confidence < 1:
        raise SLOError(f"{where}: [baseline] confidence must be in [0.5, 1), e.g. 0.95")
    if slo.method not in ("bootstrap", "mannwhitney"):
        raise SLOError(f"{where}: [baseline] method must be 'bootstrap' or 'mannwhitney'")
    if "quality" in data:
        slo.quality = _quality(data["quality"], path, _line_of(text, QUALITY_HEADER))
    if not slo.checks:
        raise SLOError(
            f'{path}:1: no [[check]] tables; add at least one, e.g. metric = "ttft_ms", percentile = "p99", max = 500'
        )
    return slo


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _table(raw: Any, where: str, table: str, noun: str, keys: tuple[str, ...]) -> None:
    """raw must be a TOML table holding only `keys`."""
    if not isinstance(raw, dict):
        raise SLOError(f"{where}: {table} must be a table")
    unknown = set(raw) - set(keys)
    if unknown:
        raise SLOError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; {noun} has {', '.join(keys)}")


def _check(raw: Any, where: str, line: int) -> Check:
    _table(raw, where, "a [[check]]", "a check", ("metric", "percentile", "max", "min"))
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise SLOError(f'{where}: check needs metric = "ttft_ms" (or error_rate, goodput, throughput.<key>)')
    percentile = raw.get("percentile")
    is_latency = not (metric in SCALAR_METRICS or metric.startswith("throughput."))
    if is_latency and percentile not in PERCENTILES:
        raise SLOError(f"{where}: metric '{metric}' needs percentile = one of {', '.join(PERCENTILES)}")
    if not is_latency and percentile is not None:
        raise SLOError(f"{where}: metric '{metric}' takes no percentile")
    bounds = {k: raw.get(k) for k in ("max", "min")}
    if all(v is None for v in bounds.values()):
        raise SLOError(f"{where}: check on '{metric}' needs max = ... or min = ...")
    for key, value in bounds.items():
        if value is not None and not _is_number(value):
            raise SLOError(f"{where}: {key} must be a number, got {value!r}")
    return Check(metric, percentile, bounds["max"], bounds["min"], line)


def _quality(raw: Any, path: Path, line: int) -> QualitySLO:
    where = f"{path}:{line}"
    _table(
        raw, where, "[quality]", "[quality]", ("min_agreement", "max_logprob_diff", "max_tokens", "prompts")
    )
    q = QualitySLO(line=line)
    agreement = raw.get("min_agreement")
    if agreement is not None and (not _is_number(agreement) or not 0 <= agreement <= 1):
        raise SLOError(f"{where}: [quality] min_agreement must be a number in [0, 1], e.g. 0.95")
    diff = raw.get("max_logprob_diff")
    if diff is not None and (not _is_number(diff) or diff < 0):
        raise SLOError(f"{where}: [quality] max_logprob_diff must be a number >= 0 (nats), e.g. 0.05")
    tokens = raw.get("max_tokens", q.max_tokens)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= 4096:
        raise SLOError(f"{where}: [quality] max_tokens must be an integer in 1..4096, e.g. 64")
    prompts = raw.get("prompts")
    if prompts is not None:
        if not isinstance(prompts, str) or not prompts:
            raise SLOError(f'{where}: [quality] prompts must be a file path, e.g. prompts = "prompts.txt"')
        q.prompts = (path.parent / prompts) if not Path(prompts).is_absolute() else Path(prompts)
        if not q.prompts.is_file():
            raise SLOError(f"{where}: [quality] prompts file {q.prompts} not found")
    q.min_agreement = None if agreement is None else float(agreement)
    q.max_logprob_diff = None if diff is None else float(diff)
    q.max_tokens = tokens
    return q

"""One request's timeline and the metric arithmetic of docs/reference/metrics.md.

Times are taken with time.perf_counter() (monotonic, sub-microsecond); `send_s` anchors them to
unix time once, so every other unix timestamp is send_s plus a perf_counter difference.

    TTFT  = first token chunk received - request sent   (loadgen.sse: empty-text tokens count)
    E2E   = last chunk received - request sent           (the final usage chunk / [DONE] included)
    TPOT  = (E2E - TTFT) / (output_tokens - 1)           (vLLM's definition; undefined for 1 token)
    ITL   = each gap between consecutive token chunks / tokens that later chunk carried
    from intended (open loop): the same, measured from the scheduled send time instead
    client queue = actual send - intended send

Output tokens come from the server's `usage`; without it the content chunks are counted and the
request is flagged `output_tokens_estimated`. Non-streaming requests have TTFT = E2E and no ITL/TPOT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tollgate.contracts.run_folder import INCOMPLETE_PREFIX

# Error reason of a request the end of the run cut off while it was in flight. Such requests are counted
# apart (summary `requests.incomplete`, as GuideLLM does), neither completed nor failed: every duration-bound
# run ends with some in flight, and they say nothing about the server's errors.
INCOMPLETE = f"{INCOMPLETE_PREFIX}: the run ended while the request was in flight"

NAN = math.nan


@dataclass
class RequestRecord:
    request_id: str
    scenario: str
    worker: int
    stream: bool
    send_s: float = NAN  # unix time of the send
    send_perf: float = NAN
    intended_perf: float = NAN  # NaN in closed loop
    chunk_perf: list[float] = field(default_factory=list)  # token chunks only (loadgen.sse)
    chunk_tokens: list[int | None] = field(default_factory=list)  # None: the chunk did not say
    end_perf: float = NAN
    prompt_tokens: int | None = None
    usage_output_tokens: int | None = None
    status: int = 0
    error: str = ""
    detail: str = ""  # the server's whole error message (error is a short reason); not a row column
    requested_input_tokens: int | None = None  # content tokens the workload asked for (None: dataset)
    requested_output_tokens: int | None = None  # max_tokens sent
    turn: int = 0  # multi-turn: 1-based turn index; 0 for single requests
    keep_text: bool = False  # keep the reply's text (a conversation resends it)
    text: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def output_tokens(self) -> tuple[int, bool]:
        """(output tokens, estimated?)."""
        if self.usage_output_tokens is not None:
            return self.usage_output_tokens, False
        known = [t for t in self.chunk_tokens if t is not None]
        return (sum(known) + self.chunk_tokens.count(None)), True

    def tokens_per_chunk(self) -> list[float]:
        """Tokens each content chunk carried. Chunks that did not say share what usage reports."""
        counts = self.chunk_tokens
        if all(t is not None for t in counts):
            return [float(t) for t in counts]  # type: ignore[arg-type]
        total, estimated = self.output_tokens()
        unknown = counts.count(None)
        known = sum(t for t in counts if t is not None)
        share = (total - known) / unknown if not estimated and total > known else 1.0
        return [float(t) if t is not None else share for t in counts]

    def ttft_ms(self) -> float:
        if not self.ok or not self.chunk_perf:
            return NAN
        return (self.chunk_perf[0] - self.send_perf) * 1000.0

    def e2e_ms(self) -> float:
        return (self.end_perf - self.send_perf) * 1000.0 if self.ok else NAN

    def tpot_ms(self) -> float:
        tokens, _ = self.output_tokens()
        if not self.ok or not self.stream or tokens < 2 or not self.chunk_perf:
            return NAN
        return (self.e2e_ms() - self.ttft_ms()) / (tokens - 1)

    def itl_ms(self) -> list[float]:
        if not self.ok or not self.stream:
            return []
        tokens = self.tokens_per_chunk()
        times = self.chunk_perf
        return [(times[i] - times[i - 1]) * 1000.0 / max(tokens[i], 1.0) for i in range(1, len(times))]

    def from_intended_ms(self, perf: float) -> float:
        if not self.ok or self.intended_perf != self.intended_perf:
            return NAN
        return (perf - self.intended_perf) * 1000.0

    def client_queue_ms(self) -> float:
        if self.intended_perf != self.intended_perf or self.send_perf != self.send_perf:
            return NAN
        return (self.send_perf - self.intended_perf) * 1000.0

    def unix(self, perf: float) -> float:
        return self.send_s + (perf - self.send_perf) if perf == perf else NAN

    def row(self, itl: list[float] | None = None) -> dict[str, Any]:
        """One row of requests.parquet (tollgate.contracts.run_folder.REQUEST_COLUMNS); `itl`: this
        record's itl_ms(), when the caller already has it (it is one value per chunk)."""
        tokens, estimated = self.output_tokens()
        itl = self.itl_ms() if itl is None else itl
        first = self.chunk_perf[0] if self.chunk_perf else NAN
        return {
            "request_id": self.request_id,
            "scenario": self.scenario,
            "worker": self.worker,
            "intended_send_s": self.unix(self.intended_perf),
            "send_s": self.send_s,
            "first_token_s": self.unix(first),
            "end_s": self.unix(self.end_perf),
            "ttft_ms": self.ttft_ms(),
            "e2e_ms": self.e2e_ms(),
            "tpot_ms": self.tpot_ms(),
            "itl_mean_ms": sum(itl) / len(itl) if itl else NAN,
            "client_queue_ms": self.client_queue_ms(),
            "prompt_tokens": -1 if self.prompt_tokens is None else self.prompt_tokens,
            "output_tokens": tokens,
            "output_tokens_estimated": estimated,
            "n_chunks": len(self.chunk_perf),
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            # extensions beyond the contract's columns
            "ttft_from_intended_ms": self.from_intended_ms(first),
            "e2e_from_intended_ms": self.from_intended_ms(self.end_perf),
            "chunk_ms": [round((t - self.send_perf) * 1000.0, 3) for t in self.chunk_perf],  # arrival - send
            "chunk_tokens": [-1 if t is None else t for t in self.chunk_tokens],  # -1: the chunk did not say
            "stream": self.stream,
            "requested_input_tokens": _or_minus(self.requested_input_tokens),  # -1: not known
            "requested_output_tokens": _or_minus(self.requested_output_tokens),
            "turn": self.turn,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RequestRecord:
        """Rebuild a record from its row (perf times relative to the send), e.g. to recover a run."""
        rec = cls(row["request_id"], row["scenario"], int(row["worker"]), bool(row["stream"]))
        rec.send_s, rec.send_perf = row["send_s"], 0.0
        rec.intended_perf = _or_nan(row["intended_send_s"]) - rec.send_s
        rec.chunk_perf = [ms / 1000.0 for ms in row["chunk_ms"]]
        rec.chunk_tokens = [None if t < 0 else int(t) for t in row["chunk_tokens"]]
        rec.end_perf = _or_nan(row["end_s"]) - rec.send_s
        rec.prompt_tokens = None if row["prompt_tokens"] < 0 else int(row["prompt_tokens"])
        rec.usage_output_tokens = None if row["output_tokens_estimated"] else int(row["output_tokens"])
        rec.status, rec.error = int(row["status"]), row["error"]
        rec.turn = int(row.get("turn", 0) or 0)
        for name in ("requested_input_tokens", "requested_output_tokens"):
            value = row.get(name, -1)
            setattr(rec, name, None if value is None or value < 0 else int(value))
        return rec


def _or_minus(value: int | None) -> int:
    return -1 if value is None else value


def _or_nan(value: Any) -> float:
    return NAN if value is None else float(value)

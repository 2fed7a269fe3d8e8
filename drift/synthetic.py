"""Synthetic request streams with known drift, for tests, benchmarks and the demo.

Prompts are drawn from topic vocabularies; request parameters from fixed mixes. `drift` knobs move one
thing at a time (topic mix, temperature mix, prompt length, system prompt) so a detector's answer can be
checked against the truth.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from tollgate.contracts.capture_log import CaptureWriter
from tollgate.contracts.capture_log import capture_record as server_capture_record
from tollgate.contracts.sketch import text_of_messages

TOPICS: dict[str, list[str]] = {
    "code": [
        "python",
        "function",
        "error",
        "stack",
        "trace",
        "compile",
        "variable",
        "loop",
        "class",
        "import",
        "module",
        "debug",
        "test",
    ],
    "cooking": [
        "recipe",
        "oven",
        "flour",
        "sugar",
        "butter",
        "bake",
        "minutes",
        "salt",
        "pepper",
        "garlic",
        "onion",
        "simmer",
    ],
    "travel": [
        "flight",
        "hotel",
        "visa",
        "airport",
        "train",
        "ticket",
        "passport",
        "beach",
        "museum",
        "itinerary",
        "booking",
    ],
    "finance": [
        "stock",
        "bond",
        "interest",
        "rate",
        "inflation",
        "budget",
        "loan",
        "mortgage",
        "invoice",
        "tax",
        "revenue",
    ],
    "medical": [
        "symptom",
        "dose",
        "fever",
        "patient",
        "clinic",
        "allergy",
        "vaccine",
        "blood",
        "pressure",
        "diagnosis",
        "pain",
    ],
}
COMMON = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "please",
    "explain",
    "how",
    "what",
    "why",
    "can",
    "you",
    "my",
    "is",
    "for",
    "with",
    "in",
]
SYSTEM_PROMPTS = ("You are a helpful assistant.", "You are a concise coding assistant.", None)


@dataclass
class Mix:
    topics: dict[str, float] = field(default_factory=lambda: {"code": 0.4, "cooking": 0.3, "travel": 0.3})
    temperatures: dict[float, float] = field(default_factory=lambda: {0.0: 0.3, 0.7: 0.5, 1.0: 0.2})
    systems: tuple[float, ...] = (0.5, 0.3, 0.2)
    mean_words: float = 40.0
    max_tokens: tuple[int, ...] = (64, 128, 256)


def _pick(rng: np.random.Generator, weights: dict[Any, float]) -> Any:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def request_body(rng: np.random.Generator, mix: Mix) -> dict[str, Any]:
    """One OpenAI chat request body."""
    vocab = TOPICS[_pick(rng, mix.topics)]
    n_words = max(1, int(rng.lognormal(np.log(mix.mean_words), 0.5)))
    words = np.where(rng.random(n_words) < 0.6, rng.choice(vocab, n_words), rng.choice(COMMON, n_words))
    system = SYSTEM_PROMPTS[
        int(rng.choice(len(SYSTEM_PROMPTS), p=np.asarray(mix.systems) / sum(mix.systems)))
    ]
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": " ".join(words.tolist())}
    ]
    return {
        "model": "tiny",
        "messages": messages,
        "max_tokens": int(rng.choice(mix.max_tokens)),
        "temperature": float(_pick(rng, mix.temperatures)),
        "top_p": 1.0,
    }


def capture_record(body: dict[str, Any], rng: np.random.Generator, timestamp: float) -> dict[str, Any]:
    """The capture-log line a server would write for `body` (contract 3), built by the servers' own
    record builder (tollgate.contracts.capture_log.capture_record)."""
    text, system = text_of_messages(body["messages"])
    completion = int(rng.integers(1, body["max_tokens"] + 1))
    request_id = uuid.UUID(int=int(rng.integers(1 << 62))).hex
    arrival = timestamp - (0.02 + completion * 0.005)
    times = SimpleNamespace(
        arrival=arrival, first_scheduled=arrival + 0.001, first_token=arrival + 0.02, finished=timestamp
    )
    record = server_capture_record(
        request_id=request_id,
        endpoint="/v1/chat/completions",
        model=body["model"],
        stream=False,
        prompt_text=text,
        system_prompt=system,
        prompt_tokens=0,
        completion_tokens=completion,
        max_tokens=body["max_tokens"],
        temperature=body["temperature"],
        top_p=body["top_p"],
        top_k=None,
        n_messages=len(body["messages"]),
        finish_reason="length" if completion == body["max_tokens"] else "stop",
        times=times,
        include_text=False,
    )
    record["prompt_tokens"] = (
        int(record["prompt_profile"]["words"] * 1.3) + 4
    )  # about what a tokenizer counts
    return record


def write_capture_log(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Append `records` to `path` through the capture log writer the servers and the proxy use."""
    writer = CaptureWriter(path, queue_size=len(records) + 1)
    for record in records:
        writer.submit(record)
    writer.close(timeout=60.0)
    return Path(path)


def capture_log(
    n: int, mix: Mix | None = None, seed: int = 0, end: float | None = None, spacing_s: float = 1.0
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    mix = mix or Mix()
    end = time.time() if end is None else end
    return [capture_record(request_body(rng, mix), rng, end - (n - 1 - i) * spacing_s) for i in range(n)]


def dataset(n: int, mix: Mix | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Training prompts as a chat JSONL dataset would hold them: messages only."""
    rng = np.random.default_rng(seed)
    mix = mix or Mix()
    return [{"messages": request_body(rng, mix)["messages"]} for _ in range(n)]

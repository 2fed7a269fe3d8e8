"""Workloads: what each request asks for, deterministic in (seed, request index).

Scenarios
    synthetic      random words, input/output lengths from DISTs: with a tokenizer (loadgen.tokens) every
                   word is one token of the target's, so a prompt is exactly N tokens; without, N words
    shared-prefix  a few long system prompts shared by many requests (exercises prefix caching)
    long-context   a long document plus a question
    dataset        prompts from --dataset: OpenAI chat JSONL or ShareGPT JSON
    multi-turn     each virtual user holds a conversation of --turns turns (loadgen.conversations),
                   resending the growing history; --dataset conversations are replayed turn by turn
    mix            "synthetic:3,shared-prefix:1" picks a scenario per request by weight

DIST: `128` | `uniform:LO:HI` | `normal:MEAN:STD` | `lognormal:MEAN:SIGMA` (MEAN of the tokens,
SIGMA of the underlying normal), always clipped to >= 1 token.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCENARIOS = ("synthetic", "shared-prefix", "long-context", "dataset", "multi-turn")

_VOCABULARY = (
    "the of and to in is it you that he was for on are with as his they be at one have this from or had by "
    "word but what some we can out other were all there when up use your how said an each she which do their "
    "time if will way about many then them write would like so these her long make thing see him two has look "
    "more day could go come did number sound no most people my over know water than call first who may down "
    "side been now find any new work part take get place made live where after back little only round man year "
    "came show every good me give our under name very through just form sentence great think say help low line"
)
WORDS = tuple(_VOCABULARY.split())


class WorkloadError(ValueError):
    """Bad workload input; the message names the file/flag, the place, and the fix."""


@dataclass(frozen=True)
class Dist:
    kind: str
    a: float = 0.0
    b: float = 0.0

    def sample(self, rng: np.random.Generator) -> int:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.integers(int(self.a), int(self.b) + 1)
        elif self.kind == "normal":
            value = rng.normal(self.a, self.b)
        else:  # lognormal with mean a: mu = ln(a) - sigma^2 / 2
            value = rng.lognormal(math.log(self.a) - self.b**2 / 2, self.b)
        return max(1, int(round(value)))


def parse_dist(text: str, flag: str = "DIST") -> Dist:
    """Parse a DIST string; raise WorkloadError saying what is wrong and what is accepted."""
    hint = f"{flag}: '{text}' is not a DIST; use 128, uniform:LO:HI, normal:MEAN:STD or lognormal:MEAN:SIGMA"
    parts = text.strip().split(":")
    try:
        numbers = [float(p) for p in parts[1:]] if len(parts) > 1 else [float(parts[0])]
    except ValueError:
        raise WorkloadError(hint) from None
    kind = "fixed" if len(parts) == 1 else parts[0]
    arity = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}
    if kind not in arity or len(numbers) != arity[kind]:
        raise WorkloadError(hint)
    if any(not math.isfinite(x) for x in numbers) or numbers[0] < (1 if kind != "normal" else 0):
        raise WorkloadError(f"{flag}: '{text}' needs finite values and a mean/low of at least 1 token")
    if kind == "uniform" and numbers[1] < numbers[0]:
        raise WorkloadError(f"{flag}: '{text}' has HI < LO; write uniform:LO:HI with LO <= HI")
    if kind in ("normal", "lognormal") and numbers[1] < 0:
        raise WorkloadError(f"{flag}: '{text}' has a negative spread")
    return Dist(kind, *numbers)


def parse_scenario(text: str) -> dict[str, float]:
    """`NAME` or `NAME:WEIGHT,NAME:WEIGHT` -> {name: weight}."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if name not in SCENARIOS:
            raise WorkloadError(f"--scenario: unknown scenario '{name}'; choose from {', '.join(SCENARIOS)}")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise WorkloadError(f"--scenario: weight '{weight}' of '{name}' is not a number") from None
        if weights[name] <= 0:
            raise WorkloadError(f"--scenario: weight of '{name}' must be positive")
    return weights


@dataclass
class RequestSpec:
    scenario: str
    messages: list[dict[str, str]]
    max_tokens: int
    input_tokens: int | None = None  # content tokens asked for (None: a dataset prompt)
    turn: int = 0  # multi-turn: 1-based turn of its conversation; 0 for single requests

    def prompt_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


@dataclass
class Workload:
    input_tokens: Dist = field(default_factory=lambda: Dist("fixed", 128))
    output_tokens: Dist = field(default_factory=lambda: Dist("fixed", 128))
    scenarios: dict[str, float] = field(default_factory=lambda: {"synthetic": 1.0})
    seed: int = 0
    dataset: list[tuple[list[dict[str, str]], int | None]] = field(default_factory=list)
    prefix_count: int = 4
    prefix_tokens: int = 512
    context_tokens: int = 4000
    output_fixed_by_flag: bool = False
    words: list[str] = field(default_factory=list)  # one-token words (loadgen.tokens); empty: WORDS
    turns: Dist = field(default_factory=lambda: Dist("fixed", 3))  # multi-turn: turns per conversation
    conversations: list[Any] = field(default_factory=list)  # multi-turn replay (loadgen.conversations)

    def __post_init__(self) -> None:
        self._vocab = tuple(self.words) or WORDS
        names = list(self.scenarios)
        self._names = names
        weights = np.array([self.scenarios[n] for n in names], dtype=float)
        self._cdf = np.cumsum(weights) / weights.sum()
        if "multi-turn" in names and self.dataset and not self.conversations:
            raise WorkloadError("--scenario multi-turn with --dataset needs the dataset's conversations")
        if "dataset" in names and not self.dataset:
            raise WorkloadError("--scenario dataset needs --dataset FILE")
        rng = np.random.default_rng([self.seed, 0x5EED])
        self._prefixes = [self.text(rng, self.prefix_tokens) for _ in range(self.prefix_count)]

    def request(self, index: int) -> RequestSpec:
        """The request with this index; the same (seed, index) always gives the same request."""
        rng = np.random.default_rng([self.seed, index])
        name = self._names[
            int(np.searchsorted(self._cdf, rng.random(), side="right").clip(max=len(self._names) - 1))
        ]
        max_tokens = self.output_tokens.sample(rng)
        if name == "dataset":
            messages, length = self.dataset[int(rng.integers(len(self.dataset)))]
            if length is not None and not self.output_fixed_by_flag:
                max_tokens = length
            return RequestSpec(name, messages, max_tokens)
        if name == "multi-turn":  # the user asks for a conversation (loadgen.conversations.Dialog)
            return RequestSpec(name, [], max_tokens, turn=1)
        n = self.input_tokens.sample(rng)
        question = self.text(rng, n)
        if name == "shared-prefix":
            system = self._prefixes[int(rng.integers(len(self._prefixes)))]
            return RequestSpec(
                name,
                [{"role": "system", "content": system}, {"role": "user", "content": question}],
                max_tokens,
                n + self.prefix_tokens,
            )
        if name == "long-context":
            document = self.text(rng, self.context_tokens)
            return RequestSpec(
                name,
                [{"role": "user", "content": f"{document}\n\nQuestion: {question}"}],
                max_tokens,
                n + self.context_tokens,
            )
        return RequestSpec(name, [{"role": "user", "content": question}], max_tokens, n)

    def text(self, rng: np.random.Generator, n: int) -> str:
        """n random words: n tokens when the workload has token words (loadgen.tokens)."""
        vocab = self._vocab
        return " ".join(vocab[i] for i in rng.integers(len(vocab), size=n))


def load_dataset(path: str | Path) -> list[tuple[list[dict[str, str]], int | None]]:
    """Read an OpenAI chat JSONL (`.jsonl`) or ShareGPT JSON file into (messages, max_tokens|None)."""
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"{path}: dataset file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = _load_jsonl(path, text) if path.suffix == ".jsonl" else _load_sharegpt(path, text)
    if not rows:
        raise WorkloadError(f"{path}: dataset holds no usable prompts")
    return rows


def _load_jsonl(path: Path, text: str) -> list[tuple[list[dict[str, str]], int | None]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise WorkloadError(f'{where}: expected an object like {{"messages": [...]}}')
        rows.append((_messages(obj.get("messages"), where), _max_tokens(obj, where)))
    return rows


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise WorkloadError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for i, msg in enumerate(value):
        if (
            not isinstance(msg, dict)
            or not isinstance(msg.get("content"), str)
            or msg.get("role")
            not in (
                "system",
                "user",
                "assistant",
                "developer",
                "tool",
            )
        ):
            raise WorkloadError(
                f"{where}: messages[{i}] needs a role (system/user/assistant) and string content"
            )
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def _max_tokens(obj: dict[str, Any], where: str) -> int | None:
    value = obj.get("max_tokens", obj.get("max_completion_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WorkloadError(f"{where}: max_tokens must be a positive integer, got {value!r}")
    return value


def _load_sharegpt(path: Path, text: str) -> list[tuple[list[dict[str, str]], int | None]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if not isinstance(data, list):
        raise WorkloadError(f'{path}:1: a ShareGPT file is a JSON list of {{"conversations": [...]}}')
    rows = []
    for i, entry in enumerate(data):
        where = f"{path}:{_line_of_entry(text, i)}: entry {i}"
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list):
            raise WorkloadError(f"{where}: missing 'conversations' list")
        human = [t for t in turns if isinstance(t, dict) and t.get("from") in ("human", "user")]
        reply = [t for t in turns if isinstance(t, dict) and t.get("from") in ("gpt", "assistant", "chatgpt")]
        if not human or not isinstance(human[0].get("value"), str):
            raise WorkloadError(f"{where}: no human turn with a string 'value'")
        length = len(reply[0]["value"].split()) if reply and isinstance(reply[0].get("value"), str) else None
        rows.append(
            ([{"role": "user", "content": human[0]["value"]}], max(1, length) if length is not None else None)
        )
    return rows


def _line_of_entry(text: str, index: int) -> int:
    """Line of the index-th top-level object of a JSON list (best effort, for error messages)."""
    depth, seen, line, in_str, escape = 0, -1, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            escape = not escape and ch == "\\"
            if ch == '"' and not escape:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth == 2:
                seen += 1
                if seen == index:
                    return line
        elif ch in "]}":
            depth -= 1
    return line

"""Multi-turn conversations: what each turn of a `multi-turn` virtual user says.

A conversation is a list of user turns, each with its reply budget (`max_tokens`). The user sends
turn 1, appends the server's actual reply to the history, sends turn 2 with the whole history, and
so on, as chat clients do: prefix caching and long contexts are exercised the way production traffic
exercises them. Synthetic conversations are a pure function of (seed, conversation index); a dataset
with real multi-turn conversations (ShareGPT `conversations`, or OpenAI chat JSONL `messages` with
several user turns) is replayed turn by turn, each reply budget taken from the recorded reply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadgen.workloads import RequestSpec, Workload, WorkloadError, load_dataset

HUMAN = ("human", "user")
ASSISTANT = ("gpt", "assistant", "chatgpt", "bard", "model")


@dataclass(frozen=True)
class Turn:
    content: str
    max_tokens: int | None  # None: the run's --output-tokens decides
    input_tokens: int | None = None  # tokens of `content` asked for (synthetic); None for datasets


@dataclass
class Conversation:
    index: int
    turns: list[Turn]
    system: list[dict[str, str]] = field(default_factory=list)  # messages before the first user turn


def load_conversations(path: str | Path) -> list[Conversation]:
    """Every conversation of a dataset, with all its user turns (load_dataset validates the file first)."""
    load_dataset(path)  # the same checks and file:line messages as the single-turn loader
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".jsonl":
        rows = [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]
        pairs = [[(m["role"], m["content"]) for m in messages] for messages in rows]
    else:
        pairs = [
            [(_role(t.get("from")), t.get("value")) for t in entry["conversations"] if isinstance(t, dict)]
            for entry in json.loads(text)
        ]
    out = []
    for index, messages in enumerate(pairs):
        conversation = _conversation(index, messages)
        if conversation.turns:
            out.append(conversation)
    if not out:
        raise WorkloadError(f"{path}: no conversation with a user turn")
    return out


def _role(name: object) -> str:
    if name in HUMAN:
        return "user"
    if name in ASSISTANT:
        return "assistant"
    return "system" if name == "system" else "other"


def _conversation(index: int, messages: list[tuple[str, object]]) -> Conversation:
    system: list[dict[str, str]] = []
    turns: list[Turn] = []
    pending: str | None = None
    for role, content in messages:
        if not isinstance(content, str):
            continue
        if role == "system" and not turns and pending is None:
            system.append({"role": "system", "content": content})
        elif role == "user":
            if pending is not None:
                turns.append(Turn(pending, None))
            pending = content
        elif role == "assistant" and pending is not None:
            turns.append(Turn(pending, max(1, len(content.split()))))
            pending = None
    if pending is not None:
        turns.append(Turn(pending, None))
    return Conversation(index, turns, system)


def conversation(workload: Workload, index: int) -> Conversation:
    """Conversation `index` of the run: a pure function of (seed, index)."""
    rng = np.random.default_rng([workload.seed, index, 0xC0])
    if workload.conversations:
        recorded = workload.conversations[int(rng.integers(len(workload.conversations)))]
        recorded_budget = not workload.output_fixed_by_flag  # --output-tokens overrides the recorded replies
        turns = [
            Turn(
                t.content,
                t.max_tokens if t.max_tokens and recorded_budget else workload.output_tokens.sample(rng),
            )
            for t in recorded.turns
        ]
        return Conversation(index, turns, recorded.system)
    turns = []
    for _ in range(workload.turns.sample(rng)):
        n = workload.input_tokens.sample(rng)
        turns.append(Turn(workload.text(rng, n), workload.output_tokens.sample(rng), n))
    return Conversation(index, turns)


class Dialog:
    """One virtual user's conversation in progress: the next turn's request, and the history so far."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.history: list[dict[str, str]] = list(conversation.system)
        self.turn = 0  # turns sent
        self.ended = False

    @property
    def done(self) -> bool:
        return self.ended or self.turn >= len(self.conversation.turns)

    def next_spec(self) -> RequestSpec:
        turn = self.conversation.turns[self.turn]
        self.turn += 1
        messages = [*self.history, {"role": "user", "content": turn.content}]
        tokens = turn.input_tokens if self.turn == 1 and not self.conversation.system else None
        return RequestSpec("multi-turn", messages, int(turn.max_tokens or 1), tokens, turn=self.turn)

    def answered(self, spec: RequestSpec, ok: bool, reply: str) -> None:
        """A failed turn ends the conversation, as a chat client gives up; a reply joins the history."""
        if not ok:
            self.ended = True
            return
        self.history = [*spec.messages, {"role": "assistant", "content": reply}]

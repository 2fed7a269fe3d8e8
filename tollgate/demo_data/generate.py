"""Deterministic generator of the demo's prompt sets (no downloads, no model).

Three JSONL files in OpenAI chat format, one `{"messages": [...]}` object per line:

    training.jsonl       the "training distribution": short customer-support questions
    live_steady.jsonl    live traffic like training (same generator, another seed)
    live_shifted.jsonl   shifted live traffic: long code-review and contract-analysis requests

`python -m tollgate.demo_data.generate [--check]` rewrites the shipped files (or checks that
they match what this generator produces).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from tollgate.demo_data import DATA_DIR

SUPPORT_SYSTEM = "Store support."
REVIEW_SYSTEM = "Review code and contracts in depth."

SUPPORT_SUBJECTS = ["my order", "the invoice", "my account", "the refund", "the delivery", "my subscription"]
SUPPORT_ISSUES = [
    "has not arrived yet",
    "shows the wrong amount",
    "was charged twice",
    "cannot be found",
    "is late by a week",
    "needs a new address",
    "was cancelled by mistake",
]
SUPPORT_ASKS = [
    "What should I do?",
    "Can you help me fix it?",
    "How long will it take?",
    "Who can I contact?",
    "Is there a fee for this?",
]
SUPPORT_DETAILS = [
    "I ordered it last Monday.",
    "The tracking page has not changed.",
    "I already tried logging out and in again.",
    "My card is still valid.",
    "I live in a small town.",
    "This is the second time this happens.",
]

REVIEW_OPENERS = [
    "Please review the following function and the clause of the supplier agreement below.",
    "Analyse this code change together with the indemnity section of the contract.",
    "Audit the module and the licensing terms quoted after it for risks.",
]
CODE_WORDS = [
    "def",
    "return",
    "self.cache",
    "lock.acquire()",
    "await",
    "yield",
    "try:",
    "except",
    "raise",
    "for",
    "in",
    "range(n)",
    "buffer",
    "offset",
    "len(items)",
    "None",
    "import",
    "async",
    "queue.put(item)",
    "if",
    "else:",
]
LEGAL_WORDS = [
    "the",
    "supplier",
    "shall",
    "indemnify",
    "licensee",
    "against",
    "all",
    "claims",
    "arising",
    "hereunder",
    "notwithstanding",
    "termination",
    "liability",
    "warranty",
    "jurisdiction",
    "party",
    "clause",
    "obligations",
    "confidential",
    "breach",
]
REVIEW_ASKS = [
    "List every bug, race condition and legal exposure you find, with line references.",
    "Explain the risks step by step and propose concrete fixes for each one.",
    "Summarise the findings as a numbered list ordered by severity.",
]


def support_prompt(rng: random.Random) -> dict:
    """A short support question (a dozen words), the training distribution."""
    parts = [f"{rng.choice(SUPPORT_SUBJECTS).capitalize()} {rng.choice(SUPPORT_ISSUES)}."]
    parts += rng.sample(SUPPORT_DETAILS, k=int(rng.random() < 0.25))
    parts.append(rng.choice(SUPPORT_ASKS))
    return {
        "messages": [
            {"role": "system", "content": SUPPORT_SYSTEM},
            {"role": "user", "content": " ".join(parts)},
        ]
    }


def review_prompt(rng: random.Random, min_words: int = 20, max_words: int = 36) -> dict:
    """A longer code-and-contract review request (about 45 words), the shifted distribution."""
    n = rng.randint(min_words, max_words)
    code = " ".join(rng.choice(CODE_WORDS) for _ in range(n // 2))
    legal = " ".join(rng.choice(LEGAL_WORDS) for _ in range(n - n // 2))
    user = f"{rng.choice(REVIEW_OPENERS)}\n\nCode:\n{code}\n\nClause:\n{legal}\n\n{rng.choice(REVIEW_ASKS)}"
    return {
        "messages": [
            {"role": "system", "content": REVIEW_SYSTEM},
            {"role": "user", "content": user},
        ]
    }


SETS = {
    "training.jsonl": (support_prompt, 400, 1),
    "live_steady.jsonl": (support_prompt, 200, 2),
    "live_shifted.jsonl": (review_prompt, 200, 3),
}


def render(name: str) -> str:
    """The exact text of one shipped file."""
    make, count, seed = SETS[name]
    rng = random.Random(seed)
    return "".join(json.dumps(make(rng), sort_keys=True) + "\n" for _ in range(count))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tollgate.demo_data.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a shipped file differs")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name in SETS:
        path = args.out / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print("stale demo data (run python -m tollgate.demo_data.generate): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Size workloads in the target's tokens: a local tokenizer (`--tokenizer`) or the server's /tokenize.

Prompts are built from words that are exactly one token each, alone and after a space, in the
target's tokenizer ("token words"); a prompt of N such words joined by spaces is then N tokens for
byte-pair and SentencePiece tokenizers, whose pre-tokenizers split at spaces. The owner process picks
the token words once, before the run, and checks sample prompts of the run's lengths; workers only
get the word list (no tokenizer needed there). When fewer than MIN_WORDS words qualify (a byte-level
tokenizer, a tiny vocabulary) or a check fails, prompts stay in words and the run says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from loadgen.workloads import WORDS, WorkloadError

MIN_WORDS = 16
CHECK_LENGTHS = (1, 7, 64, 200)


class TokenCounter(Protocol):
    source: str

    def count(self, text: str) -> int: ...


class LocalTokenizer:
    """A Hugging Face `tokenizers` file: tokenizer.json, or a folder holding one (no hub access)."""

    def __init__(self, path: str) -> None:
        from tokenizers import Tokenizer

        file = Path(path)
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise WorkloadError(
                f"--tokenizer {path}: no tokenizer.json there; give a tokenizer.json file or the checkpoint "
                "folder that holds it (local files only)"
            )
        try:
            self._tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:
            raise WorkloadError(f"--tokenizer {file}: not a tokenizers file ({exc})") from None
        self.source = f"local:{file.resolve()}"

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class ServerTokenizer:
    """The target's `POST /tokenize` (vLLM's shape), special tokens left out."""

    def __init__(self, url: str, api_key: str, model: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=url, headers=headers, timeout=10.0)
        self._model = model
        self.source = f"server:{url}/tokenize"

    def count(self, text: str) -> int:
        body: dict[str, Any] = {"prompt": text, "add_special_tokens": False}
        if self._model:
            body["model"] = self._model
        resp = self._client.post("/tokenize", json=body)
        resp.raise_for_status()
        return int(resp.json()["count"])

    def available(self) -> bool:
        """True when the server answers /tokenize (vLLM, the reference server); False on 404 and the like."""
        import httpx

        try:
            return self.count("hello") > 0
        except (httpx.HTTPError, KeyError, ValueError, TypeError):
            return False

    def close(self) -> None:
        self._client.close()


@dataclass
class TokenPlan:
    """What the workload knows about tokens; travels to every process in the run config."""

    source: str = ""  # "" when prompts are in words
    words: list[str] = field(default_factory=list)  # one token each; empty: use the default words
    warnings: list[str] = field(default_factory=list)

    def to_config(self) -> dict[str, Any]:
        return {"source": self.source, "words": self.words, "warnings": self.warnings}


def token_words(counter: TokenCounter, candidates: tuple[str, ...] = WORDS) -> list[str]:
    """The candidates that are one token alone and one token after a space.

    Counted 16 at a time: against a remote server's /tokenize the ~200 requests would otherwise cost
    200 round trips before the run starts."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [form for w in candidates for form in (w, " " + w)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = list(pool.map(counter.count, texts))
    return [w for i, w in enumerate(candidates) if counts[2 * i] == 1 and counts[2 * i + 1] == 1]


def plan_tokens(counter: TokenCounter | None, why_none: str = "") -> TokenPlan:
    """Pick token words with `counter` and check sample prompts; or say why prompts stay in words."""
    if counter is None:
        return TokenPlan(warnings=[f"prompts are sized in words, not tokens: {why_none}"])
    words = token_words(counter)
    if len(words) < MIN_WORDS:
        return TokenPlan(
            warnings=[
                f"prompts are sized in words, not tokens: only {len(words)} common words are single tokens "
                f"in {counter.source} (need {MIN_WORDS}); input lengths are approximate, see lengths.input_tokens"
            ]
        )
    rng = np.random.default_rng(0)
    for n in CHECK_LENGTHS:
        text = " ".join(words[i] for i in rng.integers(len(words), size=n))
        got = counter.count(text)
        if got != n:
            return TokenPlan(
                warnings=[
                    f"prompts are sized in words, not tokens: a {n}-word prompt of single-token words is "
                    f"{got} tokens in {counter.source}; input lengths are approximate"
                ]
            )
    return TokenPlan(source=counter.source, words=words)


def resolve(url: str, tokenizer: str | None, api_key: str = "", model: str | None = None) -> TokenPlan:
    """The run's TokenPlan: --tokenizer if given, else the server's /tokenize when it has one."""
    if tokenizer:
        return plan_tokens(LocalTokenizer(tokenizer))
    server = ServerTokenizer(url, api_key, model)
    try:
        if not server.available():
            return plan_tokens(None, "no --tokenizer given and the server has no POST /tokenize")
        return plan_tokens(server)
    finally:
        server.close()

"""Output quality of a candidate server against a baseline server: greedy agreement and logprob drift.

A quantized (or otherwise changed) release can be fast and wrong. Both servers get the same fixed
prompts through /v1/completions, greedy (temperature 0), with `logprobs: 1` (vLLM's shape: the
chosen token's logprob per position). Figures, per prompt and then averaged over prompts:

- greedy agreement: tokens of the common prefix / the longer output's tokens (1.0 = identical
  outputs; a divergence at token 10 of 64 gives 10/64, since every later token follows a different
  context). Tokens are the `logprobs.tokens` strings when both servers return logprobs, otherwise
  the texts are compared character by character (`unit` says which).
- mean logprob difference: mean |candidate - baseline| logprob of the chosen token over the common
  prefix (the same tokens in the same context), in nats; None where a server returns no logprobs
  (a server that refuses `logprobs` is asked again without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# The fixed prompt set: short, varied English openings (prose, lists, code, facts, dialogue).
PROMPTS: tuple[str, ...] = (
    "The capital of France is",
    "Here is a short story about a lighthouse keeper:",
    "def fibonacci(n):",
    "The three primary colors are",
    "Water boils at a temperature of",
    "To make a cup of tea, first",
    "The main causes of the French Revolution were",
    "In machine learning, overfitting means",
    "Dear hiring manager, I am writing to apply for",
    "A haiku about autumn leaves:",
    "The difference between a list and a tuple in Python is",
    "Once upon a time, in a small village by the sea,",
    "The speed of light in a vacuum is approximately",
    "Q: What is the largest planet in our solar system?\nA:",
    "SELECT name, email FROM users WHERE",
    "The benefits of regular exercise include",
    "Photosynthesis is the process by which",
    "Translate to French: Good morning, how are you?\n",
    "An inference server measures its latency by",
    "The first step in debugging a slow web service is",
)


class QualityError(RuntimeError):
    """A server could not be queried for the quality check; the message names which and why."""


@dataclass
class Completion:
    text: str
    tokens: list[str] | None  # logprobs.tokens, None when the server returned no logprobs
    logprobs: list[float] | None  # logprobs.token_logprobs


def prefix_agreement(a: Sequence[Any], b: Sequence[Any]) -> tuple[float, int]:
    """(common-prefix length / longer length, common-prefix length); two empty outputs agree."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    longest = max(len(a), len(b))
    return (common / longest if longest else 1.0), common


def read_prompts(path: str | Path) -> list[str]:
    """One prompt per line (blank lines skipped); `\\n` in a line stands for a newline."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.replace("\\n", "\n") for line in lines if line.strip()]


def served_model(client: httpx.Client, url: str) -> str:
    try:
        response = client.get(f"{url}/v1/models")
        response.raise_for_status()
        return response.json()["data"][0]["id"]
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
        raise QualityError(f"{url}/v1/models: cannot read the served model ({exc})") from exc


def complete(client: httpx.Client, url: str, model: str, prompt: str, max_tokens: int) -> Completion:
    """One greedy completion with logprobs; without them when the server refuses the field."""
    body: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    for logprobs in (1, None):
        payload = body if logprobs is None else {**body, "logprobs": logprobs}
        try:
            response = client.post(f"{url}/v1/completions", json=payload)
        except httpx.HTTPError as exc:
            raise QualityError(f"{url}/v1/completions: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 400 and logprobs is not None:
            continue
        if response.status_code != 200:
            raise QualityError(f"{url}/v1/completions: HTTP {response.status_code}: {response.text[:300]}")
        choice = response.json()["choices"][0]
        lp = choice.get("logprobs") or {}
        tokens, values = lp.get("tokens"), lp.get("token_logprobs")
        if tokens is None or values is None:
            return Completion(choice.get("text", ""), None, None)
        return Completion(choice.get("text", ""), list(tokens), [float(v) for v in values])
    raise AssertionError("unreachable")


def compare_outputs(cand: Completion, base: Completion) -> dict[str, Any]:
    """Agreement and logprob difference of one prompt's two completions."""
    tokens = cand.tokens is not None and base.tokens is not None
    a, b = (cand.tokens, base.tokens) if tokens else (cand.text, base.text)
    agreement, common = prefix_agreement(a, b)
    diff = None
    if tokens and cand.logprobs is not None and base.logprobs is not None and common:
        pairs = list(zip(cand.logprobs[:common], base.logprobs[:common], strict=True))
        diff = sum(abs(x - y) for x, y in pairs) / len(pairs)
    return {
        "agreement": agreement,
        "exact": a == b,
        "unit": "tokens" if tokens else "characters",
        "mean_logprob_diff": diff,
        "candidate_text": cand.text,
        "baseline_text": base.text,
    }


def quality_check(
    candidate_url: str,
    baseline_url: str,
    prompts: Sequence[str] = PROMPTS,
    max_tokens: int = 64,
    api_key: str | None = None,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Run the prompt set on both servers; return the averaged figures and the per-prompt ones."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    cand_url, base_url = candidate_url.rstrip("/"), baseline_url.rstrip("/")
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        cand_model, base_model = served_model(client, cand_url), served_model(client, base_url)
        per_prompt = [
            compare_outputs(
                complete(client, cand_url, cand_model, prompt, max_tokens),
                complete(client, base_url, base_model, prompt, max_tokens),
            )
            for prompt in prompts
        ]
    diffs = [p["mean_logprob_diff"] for p in per_prompt if p["mean_logprob_diff"] is not None]
    units = {p["unit"] for p in per_prompt}
    return {
        "candidate_url": cand_url,
        "baseline_url": base_url,
        "prompts": len(per_prompt),
        "max_tokens": max_tokens,
        "greedy_agreement": sum(p["agreement"] for p in per_prompt) / len(per_prompt),
        "exact_match": sum(p["exact"] for p in per_prompt) / len(per_prompt),
        "mean_logprob_diff": sum(diffs) / len(diffs) if diffs else None,
        "unit": units.pop() if len(units) == 1 else "mixed",
        "per_prompt": per_prompt,
    }

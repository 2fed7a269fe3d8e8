"""Sampling parameters and the batched sampler (greedy, temperature, top-k, top-p, per-request seeds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

MAX_LOGPROBS = 20  # as vLLM's default --max-logprobs


@dataclass
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0  # 0 -> greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1 -> disabled
    seed: int | None = None  # per-request generator, deterministic
    stop: list[str] = field(default_factory=list)  # stop strings, not included in output text
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None  # also return the chosen token's logprob and this many top ones

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if not 0.0 <= float(self.temperature) <= 100.0:
            raise ValueError(f"temperature must be between 0 and 100, got {self.temperature!r}")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < -1:
            raise ValueError(f"top_k must be -1, 0 (disabled) or a positive integer, got {self.top_k!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.min_tokens, int) or not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(
                f"min_tokens must be an integer between 0 and max_tokens ({self.max_tokens}), got {self.min_tokens!r}"
            )
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop must be a list of non-empty strings, got {self.stop!r}")
        if any(not isinstance(t, int) or t < 0 for t in self.stop_token_ids):
            raise ValueError(f"stop_token_ids must be non-negative integers, got {self.stop_token_ids!r}")

        if self.logprobs is not None and (
            not isinstance(self.logprobs, int) or not 0 <= self.logprobs <= MAX_LOGPROBS
        ):
            raise ValueError(
                f"logprobs must be an integer between 0 and {MAX_LOGPROBS}, got {self.logprobs!r}"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def sample(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None]
) -> list[int]:
    """Pick one token per row of `logits` ([batch, vocab], float32).

    Greedy rows use argmax. Other rows are scaled by temperature, truncated by top-k and top-p, then drawn
    with the request's own generator (seeded requests) so a seeded request gives the same tokens whatever
    else is in the batch.
    """
    out = logits.argmax(dim=-1).tolist()
    rows = [i for i, p in enumerate(params) if not p.greedy]
    if not rows:
        return out
    sub = logits[rows].float()
    temps = torch.tensor([params[i].temperature for i in rows], dtype=sub.dtype, device=sub.device)
    sub = sub / temps.unsqueeze(1)
    top_ks = [params[i].top_k if params[i].top_k > 0 else sub.shape[1] for i in rows]
    if min(top_ks) < sub.shape[1]:
        sub = _apply_top_k(sub, torch.tensor(top_ks, device=sub.device))
    top_ps = torch.tensor([params[i].top_p for i in rows], dtype=sub.dtype, device=sub.device)
    if (top_ps < 1.0).any():
        sub = _apply_top_p(sub, top_ps)
    probs = torch.softmax(sub, dim=-1).cpu()  # request generators live on the CPU
    for j, i in enumerate(rows):
        out[i] = int(torch.multinomial(probs[j], 1, generator=generators[i]).item())
    return out


def _apply_top_k(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    sorted_logits = logits.sort(dim=-1, descending=True).values
    kth = sorted_logits.gather(1, (k - 1).clamp(min=0).unsqueeze(1))
    return logits.masked_fill(logits < kth, float("-inf"))


def _apply_top_p(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches p (always at least the top token)."""
    sorted_logits, idx = logits.sort(dim=-1, descending=True)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop = (cum - sorted_logits.softmax(dim=-1)) >= p.unsqueeze(1)
    drop[:, 0] = False
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(1, idx, sorted_logits)


@dataclass
class TokenLogprobs:
    """Log-probabilities (natural log, of the model's raw distribution, before temperature and
    truncation, as vLLM reports them) of one sampled token and of the top alternatives."""

    logprob: float
    top: list[tuple[int, float]]  # (token id, logprob), most likely first


def token_logprobs(logits: torch.Tensor, tokens: list[int], top_n: list[int]) -> list[TokenLogprobs]:
    """TokenLogprobs of row i's sampled tokens[i] with its top_n[i] alternatives ([rows, vocab] logits)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    chosen = logp.gather(1, torch.tensor(tokens, device=logp.device).unsqueeze(1)).squeeze(1).tolist()
    k = max(top_n)
    values, ids = logp.topk(k, dim=-1) if k else (logp[:, :0], logp[:, :0].long())
    values, ids = values.tolist(), ids.tolist()
    return [
        TokenLogprobs(chosen[i], list(zip(ids[i][: top_n[i]], values[i][: top_n[i]], strict=True)))
        for i in range(len(tokens))
    ]

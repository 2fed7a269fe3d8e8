"""Contiguous copies of the decoding sequences' K/V (CPU), so a steady decode batch gathers nothing.

Paged attention in eager PyTorch has to gather each sequence's KV blocks into one contiguous tensor
before SDPA, on every step and in every layer: with 16 sequences of ~200 tokens that copy was 16% of
a `tiny` decode step (torch profiler, CPU). The mirror keeps the gathered tensors between steps for as
long as the same sequences decode together in the same order, and the model appends each step's new
K/V to them, so the gather runs once per change of the decode batch instead of once per step.

The paged cache stays the source of truth: block accounting, prefix caching and preemption never see
the mirror. Any change of the decode batch (a sequence joining, finishing or preempted), a row that
did not advance by exactly one token since the mirror's last step, or a row outgrowing the capacity
rebuilds it from the cache, in one gather for all layers. Sequences are told apart by `seq_no`,
unique per Sequence object, so a request id reused by a new request can never inherit an old row.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from reference_server.sequence import Sequence

MAX_BYTES = 256 * 2**20  # a decode batch whose mirror would be larger gathers per step instead
HEADROOM = 64  # keys of spare room per row: a steady batch rebuilds for growth every 64 steps at most


class DecodeMirror:
    def __init__(self, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
        self.k_cache, self.v_cache = k_cache, v_cache  # [layers, blocks, kv_heads, block_size, head_dim]
        self.members: list[int] = []  # seq_no of each row
        self.lengths: list[int] = []  # keys each row holds after the last step that used the mirror
        self.k: torch.Tensor | None = None  # [layers, rows, kv_heads, capacity, head_dim]
        self.v: torch.Tensor | None = None
        self.rows: torch.Tensor | None = None  # arange(rows), the row index of each decode token
        self.rebuilds = 0

    @property
    def capacity(self) -> int:
        return 0 if self.k is None else self.k.shape[3]

    def sync(
        self,
        seqs: list[Sequence],
        lengths: list[int],
        decode_chunks: Callable[[list[Sequence], int], torch.Tensor],
    ) -> bool:
        """Make the rows hold `seqs` (in order), each with room for its `lengths` keys (the token this
        step computes included). False when such a mirror would exceed MAX_BYTES: the caller gathers.
        `decode_chunks(seqs, width)` indexes the first `width` blocks of each (ModelRunner's)."""
        members = [s.seq_no for s in seqs]
        # reusable only when every row is exactly one token further than at its last step: a row
        # that advanced without the mirror (a compiled batch-1 step) or was recomputed is stale
        if (
            members == self.members
            and all(n == m + 1 for n, m in zip(lengths, self.lengths, strict=True))
            and max(lengths) <= self.capacity
        ):
            self.lengths = lengths
            return True
        layers, _, kv_heads, block_size, head_dim = self.k_cache.shape
        capacity = -(-(max(lengths) + HEADROOM) // block_size) * block_size
        shape = (layers, len(seqs), kv_heads, capacity, head_dim)
        if 2 * torch.Size(shape).numel() * self.k_cache.element_size() > MAX_BYTES:
            self.clear()
            return False
        # the blocks holding each row's earlier keys (this step's key is written by the model)
        width = max(-(-(n - 1) // block_size) for n in lengths) or 1
        chunks = decode_chunks(seqs, width)
        self.k = self._gather(self.k_cache, chunks, shape, width * block_size)
        self.v = self._gather(self.v_cache, chunks, shape, width * block_size)
        self.members, self.lengths = members, lengths
        self.rows = torch.arange(len(seqs), device=self.k_cache.device)
        self.rebuilds += 1
        return True

    @staticmethod
    def _gather(cache: torch.Tensor, chunks: torch.Tensor, shape: tuple[int, ...], keys: int) -> torch.Tensor:
        """Zeros (never garbage: a masked key must not be NaN) with the first `keys` of each row
        copied from the cache, all layers at once."""
        layers, rows, kv_heads, _, head_dim = shape
        out = torch.zeros(shape, dtype=cache.dtype, device=cache.device)
        blocks = cache.view(layers, -1, cache.shape[3], head_dim).index_select(1, chunks)
        out[:, :, :, :keys] = blocks.view(layers, rows, kv_heads, keys, head_dim)
        return out

    def clear(self) -> None:
        self.members, self.lengths, self.k, self.v, self.rows = [], [], None, None, None

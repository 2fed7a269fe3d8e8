"""Runs one scheduled step on the model: builds the flat batch, owns the KV cache, samples.

The KV cache is allocated once here ([layers, blocks, kv_heads, block_size, head_dim] for K and for V)
and never resized. Per step the runner only builds small index tensors (tokens, positions, KV slots,
block tables), so nothing proportional to the cache is allocated in the hot path.
"""

from __future__ import annotations

import torch

from reference_server.kv_mirror import DecodeMirror
from reference_server.model import AttentionMeta, LlamaModel
from reference_server.sampling import TokenLogprobs, sample, token_logprobs
from reference_server.sequence import Sequence


def kv_bytes_per_block(model: LlamaModel, block_size: int, dtype: torch.dtype) -> int:
    a = model.args
    return 2 * a.num_layers * block_size * a.num_kv_heads * a.head_dim * torch.finfo(dtype).bits // 8


def shape_and_input_guards(entries: list) -> list[bool]:
    """Guards the compiled decode step keeps: symbolic-shape guards and tensor guards on inputs.

    Dropped: guards on the model's parameters and attributes (fixed once loaded) and on the step's
    plain values (the runner only sends batch-1 decode steps with a key mask, see prepare()). With
    every guard (and every tensor dynamic) the check took 0.54 ms of a ~5 ms step, now 0.15 ms
    (torch profiler, tiny preset). The shape guards stay, so a step the graph was not compiled for
    recompiles rather than runs wrongly."""
    return [
        e.guard_type == "SHAPE_ENV"
        or (e.guard_type == "TENSOR_MATCH" and not isinstance(e.value, torch.nn.Parameter))
        for e in entries
    ]


class ModelRunner:
    def __init__(
        self,
        model: LlamaModel,
        num_blocks: int,
        block_size: int,
        eos_ids: frozenset[int],
        seed: int,
        compile_decode: bool = False,
    ) -> None:
        self.model = model
        # A batch-1 decode step is hundreds of tiny ops around the weight matmuls. Compiled (inductor;
        # only the block table and key mask are dynamic, so one graph serves every context length)
        # its pointwise math fuses: the tiny preset's CPU step took 0.80x the eager time (1 thread,
        # medians of 8 interleaved runs, measured). Only that step is compiled: batched steps are
        # dominated by their matmuls, and every further shape class would cost another compile.
        self.decode_one = None
        if compile_decode:
            self.decode_one = torch.compile(
                model.forward, options={"guard_filter_fn": shape_and_input_guards}
            )
        self.block_size = block_size
        self.eos_ids = sorted(eos_ids)
        a = model.args
        self.device, self.dtype = model.device, model.dtype
        self.num_kv_heads = a.num_kv_heads
        shape = (a.num_layers, num_blocks, a.num_kv_heads, block_size, a.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.v_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        model.bind_kv_cache(self.k_cache, self.v_cache)
        # CPU only: there the per-step gather is a large share of a decode step; on a GPU it is cheap
        # next to the mirror's memory, which the KV budget (taken from free memory) does not include
        self.mirror = DecodeMirror(self.k_cache, self.v_cache) if self.device.type == "cpu" else None
        self.generator = torch.Generator().manual_seed(seed)  # for unseeded sampled requests

    def chunk_index(self, tables: list[list[int]]) -> torch.Tensor:
        """Indices of each table's (block, kv head) chunks in the cache viewed as [-1, block_size, dim],
        ordered [table, head, block] so one index_select yields [B, kv_heads, blocks * block_size, dim]."""
        t = self._tensor(tables)
        heads = torch.arange(self.num_kv_heads, device=self.device)
        return (t.unsqueeze(1) * self.num_kv_heads + heads.view(1, -1, 1)).view(-1)

    def decode_chunks(self, seqs: list[Sequence], width: int) -> torch.Tensor:
        """chunk_index() of each sequence's first `width` blocks, shorter tables padded with block 0
        (its keys are masked or sliced off)."""
        tables = [seq.block_table[:width] for seq in seqs]
        return self.chunk_index([t + [0] * (width - len(t)) for t in tables])

    def _tensor(self, data: list[int]) -> torch.Tensor:
        return torch.tensor(data, dtype=torch.long).to(self.device, non_blocking=True)

    def prepare(
        self, batch: list[tuple[Sequence, int]], compiled: bool = False
    ) -> tuple[torch.Tensor, AttentionMeta, list[int]]:
        """Flatten the step's tokens. Decodes (1 token) must come first in `batch`.

        `compiled`: the step goes to the compiled graph, so its inputs take one shape class whatever
        the context length: decodes always get a key mask over at least two blocks (slicing to the
        context length, or a one-block table, would each make the compiler specialise on sizes and
        compile again)."""
        bs = self.block_size
        ids: list[int] = []
        positions: list[int] = []
        slots: list[int] = []
        logits_rows: list[int] = []
        num_decode = 0
        while num_decode < len(batch) and batch[num_decode][1] == 1:
            num_decode += 1
        prefills = []
        for k, (seq, n) in enumerate(batch):
            start, c, table = len(ids), seq.num_computed_tokens, seq.block_table
            ids.extend(seq.token_ids[c : c + n])
            pos = range(c, c + n)
            positions.extend(pos)
            slots.extend(table[p // bs] * bs + p % bs for p in pos)
            if c + n == len(seq):
                logits_rows.append(start + n - 1)
            if k >= num_decode:
                blocks = self.chunk_index([table[: -(-(c + n) // bs)]]) if c else None
                last = prefills[-1] if prefills else None
                if not c and last is not None and not last[2] and last[1] == n:
                    prefills[-1] = (*last[:4], last[4] + 1)
                else:
                    prefills.append((start, n, c, blocks, 1))
        slot = self._tensor(slots)
        meta = AttentionMeta(
            positions=self._tensor(positions),
            slot_block=slot // bs,
            slot_offset=slot % bs,
            num_decode=num_decode,
            prefills=prefills,
        )
        if num_decode:
            seqs = [seq for seq, _ in batch[:num_decode]]
            lengths = [seq.num_computed_tokens + 1 for seq in seqs]
            if (
                self.mirror is not None
                and not compiled
                and self.mirror.sync(seqs, lengths, self.decode_chunks)
            ):
                meta.mirror, keys = self.mirror, max(lengths)
            else:
                width = max(len(seq.block_table) for seq in seqs)
                width = max(width, 2) if compiled else width
                meta.decode_chunks, keys = self.decode_chunks(seqs, width), width * bs
            if min(lengths) == max(lengths) and not compiled:
                meta.decode_len = lengths[0]
            else:
                key_pos = torch.arange(keys, device=self.device)
                valid = key_pos.unsqueeze(0) < self._tensor(lengths).unsqueeze(1)
                meta.decode_mask = valid.view(num_decode, 1, 1, -1)
        return self._tensor(ids), meta, logits_rows

    @torch.inference_mode()
    def run(self, batch: list[tuple[Sequence, int]]) -> list[int | None]:
        """Compute the step; return the sampled token for each sequence that reached its end, else None.
        Sequences that asked for logprobs find their token's in `self.logprobs` (same order), else None."""
        self.logprobs: list[TokenLogprobs | None] = [None] * len(batch)
        compiled = self.decode_one is not None and len(batch) == 1 and batch[0][1] == 1
        input_ids, meta, rows = self.prepare(batch, compiled)
        samplers = [seq for seq, n in batch if seq.num_computed_tokens + n == len(seq)]
        if not samplers:
            self.model(input_ids, meta, self._tensor([]))
            return [None] * len(batch)
        forward = self.model
        if compiled:
            forward = self.decode_one
            torch._dynamo.maybe_mark_dynamic(meta.decode_chunks, 0)
            torch._dynamo.maybe_mark_dynamic(meta.decode_mask, 3)
        logits = forward(input_ids, meta, self._tensor(rows))
        self._apply_min_tokens(logits, samplers)
        params = [seq.params for seq in samplers]
        gens = [seq.generator or self.generator for seq in samplers]
        sampled = sample(logits, params, gens)
        want = [i for i, p in enumerate(params) if p.logprobs is not None]
        found = {}
        if want:
            chosen = [sampled[i] for i in want]
            lps = token_logprobs(logits[want], chosen, [params[i].logprobs for i in want])
            found = {id(samplers[i]): lp for i, lp in zip(want, lps, strict=True)}
        self.logprobs = [found.get(id(seq)) for seq, _ in batch]
        tokens = iter(sampled)
        return [next(tokens) if seq.num_computed_tokens + n == len(seq) else None for seq, n in batch]

    def _apply_min_tokens(self, logits: torch.Tensor, seqs: list[Sequence]) -> None:
        """Forbid end-of-sequence and stop tokens until a request has its min_tokens."""
        for row, seq in enumerate(seqs):
            p = seq.params
            if seq.num_output_tokens < p.min_tokens:
                banned = list(p.stop_token_ids) + ([] if p.ignore_eos else self.eos_ids)
                if banned:
                    logits[row, banned] = float("-inf")

"""A Llama-style decoder in plain PyTorch: RMSNorm, rotary embeddings, SwiGLU MLP, grouped-query attention.

The forward pass works on a flat batch of tokens from many sequences and reads/writes a paged KV cache.
Layout of one step's batch (built by model_runner.py): first the decode tokens (one per sequence,
attended in one padded SDPA call), then the prefill chunks (one SDPA call per chunk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from reference_server.kv_mirror import DecodeMirror


@dataclass
class ModelArgs:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False

    def num_params(self) -> int:
        h, i, d = self.hidden_size, self.intermediate_size, self.head_dim
        attn = h * d * (self.num_heads * 2 + self.num_kv_heads * 2)
        per_layer = attn + 3 * h * i + 2 * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return self.num_layers * per_layer + self.vocab_size * h + head + h


@dataclass
class AttentionMeta:
    """Where this step's tokens live in the KV cache and who attends to what."""

    positions: torch.Tensor  # [T]
    slot_block: torch.Tensor  # [T] KV block of each token
    slot_offset: torch.Tensor  # [T] its row inside the block
    num_decode: int  # the first num_decode tokens are single-token decodes
    # [B * kv_heads * max_blocks] indices of (block, kv head) chunks, see chunk_index()
    decode_chunks: torch.Tensor | None = None
    decode_mask: torch.Tensor | None = None  # [B, 1, 1, max_blocks * block_size], True = attend
    decode_len: int = 0  # when all decodes have this context length: slice instead of mask
    # (start, tokens, tokens already cached before it, chunk index or None, count) per group of prefill
    # chunks: uncached chunks of equal length that follow each other are attended in one batched call
    prefills: list[tuple[int, int, int, torch.Tensor | None, int]] = field(default_factory=list)
    mirror: DecodeMirror | None = None  # contiguous K/V of the decode rows, see kv_mirror.py
    cos: torch.Tensor | None = None  # [T, head_dim], filled by the model
    sin: torch.Tensor | None = None


def onednn_linear() -> bool:
    """Whether this torch has oneDNN's prepacked linear (private ops, so probed rather than assumed from
    the version): `torch.ops.mkldnn._reorder_linear_weight` / `_linear_pointwise`, checked once on a tiny
    matmul against torch.mm. Without them Linear keeps its column blocks for every row count (plain torch)."""
    global _ONEDNN
    if _ONEDNN is None:
        try:
            w, x = torch.randn(8, 16), torch.randn(3, 8)
            packed = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), 16)
            y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
            _ONEDNN = bool(torch.allclose(y, x @ w, atol=1e-4))
        except (AttributeError, RuntimeError, TypeError):
            _ONEDNN = False
    return _ONEDNN


_ONEDNN: bool | None = None


class Linear(nn.Module):
    """y = x W^T + b, created uninitialised (weights always come from a checkpoint or a seed, so
    nn.Linear's random init would only cost start-up time).

    W is stored transposed ([in, out], contiguous): batch-1 matmuls run ~1.4x faster that way than in
    nn.Linear's [out, in] with this CPU's MKL (measured). On CPU (float32), pack() swaps that layout
    for two others, each faster than MKL where it is used (measured, 2-core AMD EPYC, 1 thread):
    - column blocks ([out / 16, in, 16], out padded to a multiple of 16) for 1-2 rows: a batch-1
      matmul becomes a bmm of [1, in] by 16-wide panels, each of which is one contiguous stream, so the
      decode step's weights stream at the machine's read bandwidth: the tiny preset's 33 batch-1
      matmuls took 4.1-5.3 ms against 5.9-6.1 ms for mm on [in, out] (23-25 GB/s vs 12.5-17 GB/s),
      with bit-identical results;
    - a oneDNN prepacked copy for 3 rows and more (prefill chunks, batched decodes): 1.5-2.5x faster
      than MKL at 4..512 rows.
    """

    BLOCK = 16  # output columns per panel: 16 float32 = one AVX-512 register (32 ran 1.3x slower)
    BLOCKED_MAX_ROWS = 2  # from 3 rows on the oneDNN copy wins (at 2 rows they are even)

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.packed: torch.Tensor | None = None
        self.blocked = False

    def pack(self) -> None:
        """Switch to the CPU layouts above; the parameter then holds the column blocks."""
        w = self.weight.data
        pad = -self.out_features % self.BLOCK
        if onednn_linear():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), 16)
        self.blocked = True
        padded = F.pad(w, (0, pad)) if pad else w
        self.weight.data = padded.view(w.shape[0], -1, self.BLOCK).transpose(0, 1).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.blocked:
            if self.bias is None:
                return torch.mm(x, self.weight)
            return torch.addmm(self.bias, x, self.weight)
        rows = x.shape[0]
        if rows > self.BLOCKED_MAX_ROWS and self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        # [out / 16, rows, 16]: for one row that memory already is the [1, out] result
        y = torch.matmul(x, self.weight)
        y = y.view(1, -1) if rows == 1 else y.transpose(0, 1).reshape(rows, -1)
        if y.shape[1] != self.out_features:
            y = y[:, : self.out_features]
        return y if self.bias is None else y + self.bias


class Embedding(nn.Module):
    def __init__(self, num: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused kernel; same math as below
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_inv_freq(args: ModelArgs) -> torch.Tensor:
    """Inverse frequencies, with Llama 3 style scaling when the checkpoint asks for it."""
    d = args.head_dim
    inv_freq = 1.0 / (args.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    scaling = args.rope_scaling or {}
    if scaling.get("rope_type", scaling.get("type", "default")) != "llama3":
        return inv_freq
    factor = scaling["factor"]
    low, high = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
    old_len = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
    return torch.where(medium, smoothed, scaled)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.num_kv_heads, self.head_dim = args.num_heads, args.num_kv_heads, args.head_dim
        self.q_size, self.kv_size = args.num_heads * args.head_dim, args.num_kv_heads * args.head_dim
        self.qkv = Linear(args.hidden_size, self.q_size + 2 * self.kv_size, bias=args.attention_bias)
        self.o = Linear(self.q_size, args.hidden_size, bias=args.attention_bias)
        self.scale = args.head_dim**-0.5
        self.k_cache: torch.Tensor | None = None  # [num_blocks, kv_heads, block_size, head_dim], bound later
        self.v_cache: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, meta: AttentionMeta) -> torch.Tensor:
        t, nq, nkv = x.shape[0], self.num_heads, self.num_kv_heads
        qkv = self.qkv(x).view(t, nq + 2 * nkv, self.head_dim)
        # rotary embedding on q and k heads at once; roll by half = cat(x2, x1), the sign lives in sin
        qk = qkv[:, : nq + nkv]
        qk = qk * meta.cos + qk.roll(self.head_dim // 2, dims=-1) * meta.sin
        q, k, v = qk[:, :nq], qk[:, nq:], qkv[:, nq + nkv :]
        self.k_cache[meta.slot_block, :, meta.slot_offset] = k.to(self.k_cache.dtype)
        self.v_cache[meta.slot_block, :, meta.slot_offset] = v.to(self.v_cache.dtype)
        outs = []
        if meta.num_decode:
            b = meta.num_decode
            outs.append(self._decode(q[:b], k[:b], v[:b], meta))
        for start, n, cached, chunks, count in meta.prefills:
            end = start + n * count
            outs.append(self._prefill(q[start:end], k[start:end], v[start:end], cached, chunks, count))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)
        return self.o(out.reshape(t, self.q_size))

    def _gather(self, cache: torch.Tensor, chunks: torch.Tensor, batch: int) -> torch.Tensor:
        """[batch, kv_heads, blocks * block_size, head_dim], contiguous: SDPA ran ~8x faster on a
        contiguous K/V than on a transposed view of a [tokens, heads, dim] layout (measured, CPU)."""
        bs, d = cache.shape[2], cache.shape[3]
        return cache.view(-1, bs, d).index_select(0, chunks).view(batch, self.num_kv_heads, -1, d)

    def _decode(
        self, q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor, meta: AttentionMeta
    ) -> torch.Tensor:
        """One new token per sequence. The query heads sharing a KV head become that head's query
        rows ([b, kv_heads, group, d]): no causal mask is needed (all rows sit at the same position).
        Keys come from the decode mirror when the runner keeps one (this step's are appended to it),
        else they are gathered from the paged cache."""
        b, nkv, d = q.shape[0], self.num_kv_heads, self.head_dim
        if meta.mirror is not None:
            k, v = meta.mirror.k[self.layer_idx], meta.mirror.v[self.layer_idx]
            pos = meta.positions[:b]
            k[meta.mirror.rows, :, pos] = k_new.to(k.dtype)
            v[meta.mirror.rows, :, pos] = v_new.to(v.dtype)
        else:
            k = self._gather(self.k_cache, meta.decode_chunks, b)
            v = self._gather(self.v_cache, meta.decode_chunks, b)
        if meta.decode_mask is None:
            k, v = k[:, :, : meta.decode_len], v[:, :, : meta.decode_len]
        else:
            keys = meta.decode_mask.shape[-1]
            k, v = k[:, :, :keys], v[:, :, :keys]
        out = F.scaled_dot_product_attention(
            q.view(b, nkv, -1, d), k, v, attn_mask=meta.decode_mask, scale=self.scale
        )
        return out.reshape(b, self.num_heads, d)

    def _prefill(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        cached: int,
        chunks: torch.Tensor | None,
        count: int,
    ) -> torch.Tensor:
        """`count` chunks of n tokens each; a chunk with cached context (count 1) reads it from the cache."""
        n, d = q.shape[0] // count, self.head_dim
        mask = None
        if cached:
            total = cached + n
            k = self._gather(self.k_cache, chunks, 1)[:, :, :total]
            v = self._gather(self.v_cache, chunks, 1)[:, :, :total]
            key_pos = torch.arange(total, device=q.device)
            mask = key_pos.unsqueeze(0) <= (key_pos[cached:]).unsqueeze(1)
        else:
            k = k.view(count, n, self.num_kv_heads, d).transpose(1, 2)
            v = v.view(count, n, self.num_kv_heads, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q.view(count, n, self.num_heads, d).transpose(1, 2),
            k,
            v,
            attn_mask=mask,
            is_causal=mask is None and n > 1,
            scale=self.scale,
            enable_gqa=True,
        )
        return out.transpose(1, 2).reshape(count * n, self.num_heads, d)


class MLP(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.gate_up = Linear(args.hidden_size, 2 * args.intermediate_size, bias=args.mlp_bias)
        self.down = Linear(args.intermediate_size, args.hidden_size, bias=args.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, args: ModelArgs, layer_idx: int) -> None:
        super().__init__()
        self.input_norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.attn = Attention(args, layer_idx)
        self.post_norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = MLP(args)

    def forward(self, x: torch.Tensor, meta: AttentionMeta) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), meta)
        return x + self.mlp(self.post_norm(x))


class LlamaModel(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.embed = Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(args, i) for i in range(args.num_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.lm_head = Linear(args.hidden_size, args.vocab_size, bias=False)
        self.register_buffer("rope_cos", torch.empty(0), persistent=False)
        self.register_buffer("rope_sin", torch.empty(0), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of activations and the KV cache (the norms'; weights may be quantized)."""
        return self.norm.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.norm.weight.device

    def init_rope(self) -> None:
        """Precompute cos/sin for every position once (float32, as transformers does)."""
        inv_freq = rope_inv_freq(self.args).to(self.device)
        pos = torch.arange(self.args.max_position_embeddings, device=inv_freq.device).float()
        freqs = pos.unsqueeze(1) * inv_freq.unsqueeze(0)
        cos, sin = freqs.cos(), freqs.sin()
        self.rope_cos = torch.cat((cos, cos), dim=-1).to(self.dtype)
        self.rope_sin = torch.cat((-sin, sin), dim=-1).to(self.dtype)  # sign of rotate_half

    def bind_kv_cache(self, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
        """Give each layer its slice of the cache tensors ([layers, blocks, kv_heads, block_size, head_dim])."""
        for i, layer in enumerate(self.layers):
            layer.attn.k_cache, layer.attn.v_cache = k_cache[i], v_cache[i]

    def forward(
        self, input_ids: torch.Tensor, meta: AttentionMeta, logits_index: torch.Tensor
    ) -> torch.Tensor:
        """Run the flat batch; return float32 logits of the rows in `logits_index` only."""
        meta.cos = self.rope_cos.index_select(0, meta.positions).unsqueeze(1)
        meta.sin = self.rope_sin.index_select(0, meta.positions).unsqueeze(1)
        x = self.embed(input_ids)
        for layer in self.layers:
            x = layer(x, meta)
        x = self.norm(x[logits_index])
        return self.lm_head(x).float()

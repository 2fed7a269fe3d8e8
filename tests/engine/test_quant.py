"""Weight-only int8 (`--quantization int8`): the quantizer, both matmul paths, and the engine on it."""

from __future__ import annotations

import pytest
import torch

from reference_server.engine import Engine
from reference_server.errors import ConfigError
from reference_server.model import AttentionMeta, Linear
from reference_server.quant import Int8Embedding, Int8Linear, dense_weight, quantize_rows
from reference_server.sampling import SamplingParams
from tests.engine.helpers import micro_checkpoint, micro_engine


def test_quantize_rows_error_is_within_half_a_step():
    w = torch.randn(48, 64, generator=torch.Generator().manual_seed(1))
    w[3] = 0.0  # an all-zero row must not divide by zero
    q, scales = quantize_rows(w, torch.bfloat16)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    err = (q.float() * scales.float().unsqueeze(1) - w).abs()
    assert (err <= scales.float().unsqueeze(1) / 2 + 1e-6).all()
    assert (q[3] == 0).all()


@pytest.mark.parametrize("rows", [1, 2, Int8Linear.GEMM_MIN_ROWS + 8])
def test_int8_linear_matches_float_matmul_on_both_paths(rows):
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(64, 96, generator=gen) * 0.05  # [in, out], as Linear stores it
    linear = Linear(64, 96)
    linear.weight.data = w.clone()
    linear.pack()
    assert torch.equal(dense_weight(linear), w.t())  # the packed layout unpacks exactly
    q, scales = quantize_rows(w.t(), torch.bfloat16)
    x = torch.randn(rows, 64, generator=gen)
    y = Int8Linear(q, scales, None)(x)
    exact = x @ w
    assert y.dtype == torch.float32 and y.shape == (rows, 96)
    assert (y - exact).norm() / exact.norm() < 0.02


def test_engine_int8_quantizes_every_linear_and_shares_tied_embedding(tmp_path):
    fp32 = micro_engine(tmp_path / "m")
    int8 = micro_engine(tmp_path / "m", quantization="int8")
    model = int8.model
    assert not any(isinstance(m, Linear) for m in model.modules())
    linears = [m for m in model.modules() if isinstance(m, Int8Linear)]
    assert len(linears) == 4 * model.args.num_layers + 1  # qkv, o, gate_up, down per layer + lm_head
    assert all(m.weight.dtype == torch.int8 for m in linears)
    assert model.dtype == torch.float32 and int8.runner.k_cache.dtype == torch.float32  # KV unchanged
    ids = [5, 6, 7, 8, 9, 100, 101, 102]
    exact, approx = prefill_logits(fp32, ids), prefill_logits(int8, ids)
    assert (approx - exact).norm() / exact.norm() < 0.03
    params = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True)
    assert [len(x) for x in int8.generate_batch([ids, ids[:3]], params)] == [12, 12]


def prefill_logits(engine: Engine, ids: list[int]) -> torch.Tensor:
    """Logits at every position of one prefill chunk written to the first KV blocks (idle engine)."""
    n, bs = len(ids), engine.config.block_size
    pos = torch.arange(n)
    meta = AttentionMeta(positions=pos, slot_block=pos // bs, slot_offset=pos % bs, num_decode=0)
    meta.prefills = [(0, n, 0, None, 1)]
    with torch.inference_mode():
        return engine.model(torch.tensor(ids), meta, pos)


def test_tied_embedding_reads_the_int8_head(tmp_path):
    engine = micro_engine(tmp_path / "t", quantization="int8", seed=0)
    reference = micro_engine(tmp_path / "t")
    assert not engine.model.args.tie_word_embeddings  # the micro config is untied: embedding stays float
    assert torch.equal(engine.model.embed.weight, reference.model.embed.weight)
    micro_checkpoint(tmp_path / "tied", tie_word_embeddings=True)
    tied = micro_engine(tmp_path / "tied", quantization="int8")
    embed, head = tied.model.embed, tied.model.lm_head
    assert isinstance(embed, Int8Embedding) and embed.head[0] is head
    ids = torch.tensor([0, 17, 257])
    rows = embed(ids)
    assert torch.allclose(rows, head.weight[ids].float() * head.scales[ids].float().unsqueeze(1))


def test_unknown_quantization_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--quantization int8"):
        micro_engine(tmp_path / "m", quantization="int4")

"""Greedy decoding through the engine equals transformers' generate() token for token."""

import random

import pytest
import torch

from reference_server.config import EngineConfig
from reference_server.engine import Engine
from reference_server.sampling import SamplingParams

transformers = pytest.importorskip("transformers")

NEW_TOKENS = 64


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = transformers.LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.2,
        bos_token_id=256,
        eos_token_id=257,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("llama")
    model.save_pretrained(path)
    return path, model


def hf_greedy(hf_model, prompts: list[list[int]]) -> list[list[int]]:
    expected = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            out = hf_model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                min_new_tokens=NEW_TOKENS,
                pad_token_id=0,
            )
            expected.append(out[0, len(prompt) :].tolist())
    return expected


@pytest.mark.timeout(120)
def test_greedy_matches_transformers_generate(checkpoint):
    path, hf_model = checkpoint
    # lengths chosen to cover partial and exact blocks, and two equal lengths (one batched prefill call);
    # the engine runs them all in one batch
    prompts = [[(7 * i + 3 * j) % 250 + 1 for j in range(n)] for i, n in enumerate((5, 16, 23, 23, 40))]
    expected = hf_greedy(hf_model, prompts)
    engine = Engine(EngineConfig(model=str(path), device="cpu", num_kv_blocks=64))
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, min_tokens=NEW_TOKENS)
    got = engine.generate_batch(prompts, params)
    assert engine.step_count == NEW_TOKENS  # all prompts really ran in the same steps
    assert engine.runner.mirror.rebuilds == 1  # decodes read the mirror, built once, then appended to
    for prompt, want, have in zip(prompts, expected, got, strict=True):
        assert len(have) == NEW_TOKENS
        assert have == want, f"prompt of {len(prompt)} tokens diverged"
    assert len({t for out in got for t in out}) > 10  # a real, non-degenerate continuation


@pytest.mark.timeout(120)
@pytest.mark.parametrize("group", [1, 2])
def test_greedy_parity_one_and_two_at_a_time(checkpoint, group):
    """Decode steps of 1 or 2 rows take the column-block matmul path (see model.Linear), larger
    batches the oneDNN one: both must keep transformers' tokens (vocab 300 also pads the last panel)."""
    path, hf_model = checkpoint
    prompts = [[(5 * i + 11 * j) % 250 + 1 for j in range(n)] for i, n in enumerate((9, 31, 17, 48))]
    expected = hf_greedy(hf_model, prompts)
    engine = Engine(EngineConfig(model=str(path), device="cpu", num_kv_blocks=64))
    assert engine.model.lm_head.packed is not None  # the CPU layouts are really in use
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, min_tokens=NEW_TOKENS)
    for i in range(0, len(prompts), group):
        got = engine.generate_batch(prompts[i : i + group], params)
        assert got == expected[i : i + group], f"prompts {i}..{i + group - 1} diverged"


@pytest.mark.parametrize("rows", [1, 2, 3, 7])
@pytest.mark.parametrize("bias", [False, True])
def test_packed_linear_matches_plain_matmul(rows, bias):
    from reference_server.model import Linear

    torch.manual_seed(rows)
    layer = Linear(48, 300, bias=bias)  # 300 outputs: the last 16-wide panel is padded
    torch.nn.init.normal_(layer.weight)
    if bias:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(rows, 48)
    want = x @ layer.weight.detach().clone() + (layer.bias.detach() if bias else 0)
    layer.pack()
    assert layer.weight.shape == (19, 48, 16)
    got = layer(x)
    assert got.shape == (rows, 300)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.timeout(300)
def test_compiled_decode_keeps_parity_and_compiles_once(checkpoint):
    """--compile: batch-1 decode steps run one torch.compile graph, compiled at start-up, that serves
    every context length (one block, several, block-aligned) without compiling again, with
    transformers' tokens."""
    from torch._dynamo.utils import counters

    path, hf_model = checkpoint
    prompts = [[(3 * i + 7 * j) % 250 + 1 for j in range(n)] for i, n in enumerate((2, 16, 47))]
    expected = hf_greedy(hf_model, prompts)
    engine = Engine(EngineConfig(model=str(path), device="cpu", num_kv_blocks=64, compile_decode=True))
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1 and engine.step_count == 0  # compiled during start-up, counters reset
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, min_tokens=NEW_TOKENS)
    for prompt, want in zip(prompts, expected, strict=True):
        assert engine.generate_batch([prompt], params) == [want], f"prompt of {len(prompt)} tokens diverged"
    assert counters["stats"]["unique_graphs"] == graphs


@pytest.mark.timeout(120)
def test_decode_mirror_gives_the_tokens_of_per_step_gathering(checkpoint):
    """The CPU decode mirror (kv_mirror.py) under churn: staggered lengths and finishes, preemption
    from a small KV budget, seeded sampling. Every token must equal the engine that gathers from the
    paged cache on every step, and the mirror must have been rebuilt many times along the way."""
    path, _ = checkpoint
    rng = random.Random(3)
    prompts = [[rng.randrange(1, 250) for _ in range(rng.randrange(1, 40))] for _ in range(14)]
    params = [
        SamplingParams(
            max_tokens=rng.randrange(1, 50), temperature=0.0 if i % 2 else 0.9, seed=i, ignore_eos=True
        )
        for i in range(len(prompts))
    ]

    def run(mirror: bool) -> tuple[list[list[int]], Engine]:
        config = EngineConfig(
            model=str(path), device="cpu", num_kv_blocks=12, max_num_seqs=8, max_model_len=96
        )
        engine = Engine(config)
        if not mirror:
            engine.runner.mirror = None
        return engine.generate_batch(prompts, params), engine

    gathered, _ = run(mirror=False)
    mirrored, engine = run(mirror=True)
    assert engine.stats().num_preemptions > 0
    assert engine.runner.mirror.rebuilds > 5
    assert mirrored == gathered

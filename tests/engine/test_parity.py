"""Greedy decoding through the engine equals transformers' generate() token for token."""

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


@pytest.mark.timeout(120)
def test_greedy_matches_transformers_generate(checkpoint):
    path, hf_model = checkpoint
    # lengths chosen to cover partial and exact blocks, and two equal lengths (one batched prefill call);
    # the engine runs them all in one batch
    prompts = [[(7 * i + 3 * j) % 250 + 1 for j in range(n)] for i, n in enumerate((5, 16, 23, 23, 40))]
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
    engine = Engine(EngineConfig(model=str(path), device="cpu", num_kv_blocks=64))
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, min_tokens=NEW_TOKENS)
    got = engine.generate_batch(prompts, params)
    assert engine.step_count == NEW_TOKENS  # all prompts really ran in the same steps
    for prompt, want, have in zip(prompts, expected, got, strict=True):
        assert len(have) == NEW_TOKENS
        assert have == want, f"prompt of {len(prompt)} tokens diverged"
    assert len({t for out in got for t in out}) > 10  # a real, non-degenerate continuation

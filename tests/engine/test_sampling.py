"""Sampling: parameter validation, seeded determinism, top-k / top-p bounds."""

import pytest
import torch

from reference_server.sampling import SamplingParams, sample

from .helpers import micro_engine


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", 0),
        ("temperature", -1.0),
        ("top_p", 0.0),
        ("top_k", -2),
        ("min_tokens", 99),
        ("stop", [""]),
    ],
)
def test_validate_names_the_bad_field(field, value):
    params = SamplingParams(**{field: value})
    with pytest.raises(ValueError, match=field):
        params.validate()


def test_top_k_only_draws_from_the_k_best():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.5, -1.0, 2.9]])
    params = [SamplingParams(temperature=1.0, top_k=3)]
    gen = torch.Generator().manual_seed(0)
    drawn = {sample(logits, params, [gen])[0] for _ in range(300)}
    assert drawn == {1, 3, 5}


def test_top_p_only_draws_from_the_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    params = [SamplingParams(temperature=1.0, top_p=0.75)]  # 0.5 + 0.3 reaches 0.75
    gen = torch.Generator().manual_seed(0)
    drawn = {sample(probs.log(), params, [gen])[0] for _ in range(300)}
    assert drawn == {0, 1}


def test_greedy_and_top_k_one_agree():
    logits = torch.randn(5, 50, generator=torch.Generator().manual_seed(1))
    greedy = sample(logits, [SamplingParams(temperature=0.0)] * 5, [None] * 5)
    top1 = sample(logits, [SamplingParams(temperature=0.7, top_k=1)] * 5, [torch.Generator()] * 5)
    assert greedy == top1 == logits.argmax(-1).tolist()


@pytest.mark.timeout(60)
def test_seeded_requests_are_deterministic_whatever_the_batch(tmp_path):
    engine = micro_engine(tmp_path, num_kv_blocks=64)
    prompt = [256, 10, 20, 30]
    seeded = SamplingParams(max_tokens=24, temperature=1.0, seed=1234, ignore_eos=True)
    alone = engine.generate_batch([prompt], seeded)[0]
    noisy = SamplingParams(max_tokens=24, temperature=1.0, ignore_eos=True)
    in_batch = engine.generate_batch([[256, 1, 2], prompt, [256, 9] * 5], [noisy, seeded, noisy])[1]
    assert alone == in_batch
    other_seed = SamplingParams(max_tokens=24, temperature=1.0, seed=4321, ignore_eos=True)
    assert engine.generate_batch([prompt], other_seed)[0] != alone

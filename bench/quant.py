"""Weight-only int8 (`--quantization int8`) vs the float32 engine on the same model, side by side.

The model is the real SmolLM2-135M-Instruct by default (the GGUF's Q4_1 weights, dequantized to
float32 at load: the float32 engine IS the Q4_1 model, so "fp32" below reads "Q4_1 weights run in
float32", and int8 re-quantizes those weights per output channel). Same prompts for both engines,
interleaved repetitions, medians.

decode      decode tok/s of one request (tokens after the first / time since the first), and output
            tok/s of 16 requests in flight (64 random prompt tokens, 64 greedy tokens, EOS ignored)
memory      bytes of weights held (parameters + the float32 engine's oneDNN copies) and read per step
perplexity  on tests/data/quality_text.txt (README prose), 256-token windows, both engines, and
            transformers on the same GGUF (its own dequantization: an independent check of the fp32 row)
agreement   greedy agreement over 64 tokens on loadgen.quality's 20 prompts (common prefix / 64)

    python -m bench quant [--model=smollm2-135m] [--threads=N] [--reps=3] [--no-transformers] [--speed-only]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import print_table, write_result
from bench.server import decode_rate, random_prompts, run_engine
from loadgen.quality import PROMPTS, prefix_agreement
from reference_server.config import EngineConfig
from reference_server.engine import Engine
from reference_server.sampling import SamplingParams
from reference_server.sequence import Sequence

TEXT = Path(__file__).resolve().parents[1] / "tests" / "data" / "quality_text.txt"
WINDOW = 256
PROMPT_LEN, OUTPUT_LEN, AGREE_LEN = 64, 64, 64


def held_bytes(engine: Engine) -> int:
    """Weight bytes in memory: unique parameters plus the oneDNN copies packed float32 Linears keep."""
    seen, total = set(), 0
    for module in engine.model.modules():
        packed = getattr(module, "packed", None)
        if packed is not None:
            total += packed.numel() * packed.element_size()
    for p in engine.model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


def step_bytes(engine: Engine) -> int:
    """Weight bytes a decode step reads: every parameter but the embedding table (a lookup reads a
    row per token). bench.server's weight_bytes_per_step counts a tied embedding too, which the
    float32 engine holds as a second copy next to the lm_head (it reads only the head)."""
    return sum(
        p.numel() * p.element_size() for n, p in engine.model.named_parameters() if n != "embed.weight"
    )


@torch.inference_mode()
def window_nll(engine: Engine, ids: list[int]) -> tuple[float, int]:
    """Summed negative log-likelihood of ids[1:] given the prefix, one prefill chunk (engine idle)."""
    seq = Sequence("ppl", ids, SamplingParams(max_tokens=1))
    engine.block_manager.allocate(seq)
    try:
        input_ids, meta, _ = engine.runner.prepare([(seq, len(ids))])
        logits = engine.model(input_ids, meta, torch.arange(len(ids)))
    finally:
        engine.block_manager.free(seq)
    logp = torch.log_softmax(logits[:-1].float(), dim=-1)
    target = torch.tensor(ids[1:]).unsqueeze(1)
    return float(-logp.gather(1, target).sum()), len(ids) - 1


def windows(engine: Engine) -> list[list[int]]:
    ids = engine.tokenizer.encode(TEXT.read_text(encoding="utf-8"), add_special_tokens=False)
    return [ids[i : i + WINDOW] for i in range(0, len(ids) - 1, WINDOW) if len(ids[i : i + WINDOW]) > 1]


def perplexity(engine: Engine) -> float:
    nll, n = 0.0, 0
    for w in windows(engine):
        a, b = window_nll(engine, w)
        nll, n = nll + a, n + b
    return math.exp(nll / n)


def transformers_perplexity(model: str, chunks: list[list[int]]) -> float | None:
    """transformers' own GGUF loader (dequantizes Q4_1 to float32) on the same token windows."""
    from reference_server.gguf_loader import GGUF_PRESETS, packaged_gguf

    if model not in GGUF_PRESETS and not model.endswith(".gguf"):
        return None
    from transformers import AutoModelForCausalLM

    path = packaged_gguf(model) if model in GGUF_PRESETS else Path(model)
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    nll, n = 0.0, 0
    with torch.inference_mode():
        for w in chunks:
            ids = torch.tensor([w])
            out = hf(ids, labels=ids)
            nll, n = nll + float(out.loss) * (len(w) - 1), n + len(w) - 1
    return math.exp(nll / n)


def agreement(a: Engine, b: Engine) -> tuple[float, float]:
    """Mean greedy agreement and exact-match fraction of b against a over the prompt set."""
    prompts = [a.tokenizer.encode(p, add_special_tokens=True) for p in PROMPTS]
    params = SamplingParams(max_tokens=AGREE_LEN, temperature=0.0, ignore_eos=True)
    outs_a, outs_b = a.generate_batch(prompts, params), b.generate_batch(prompts, params)
    scores = [prefix_agreement(x, y)[0] for x, y in zip(outs_a, outs_b, strict=True)]
    return statistics.mean(scores), sum(s == 1.0 for s in scores) / len(scores)


def decode_speed(engine: Engine, prompts: list[list[int]]) -> float:
    params = SamplingParams(max_tokens=OUTPUT_LEN, temperature=0.0, ignore_eos=True)
    wall, times = run_engine(engine, prompts, params)
    if len(prompts) == 1:
        return decode_rate(times[0], OUTPUT_LEN)
    return len(prompts) * OUTPUT_LEN / wall


def interleaved_speeds(engines: dict[str, Engine], reps: int) -> dict[tuple[str, int], list[float]]:
    """(engine, concurrency) -> tokens/s of each repetition; the engines take turns on the same prompts,
    so each pair of figures ran back to back under the same machine load."""
    rng = random.Random(0)
    vocab = engines["fp32"].vocab_size
    speed: dict[tuple[str, int], list[float]] = {}
    for e in engines.values():
        e.start()
    for _ in range(reps):
        for conc in (1, 16):
            prompts = random_prompts(rng, conc, PROMPT_LEN, vocab)
            for name, e in engines.items():
                speed.setdefault((name, conc), []).append(decode_speed(e, prompts))
    for e in engines.values():
        e.shutdown()
    return speed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quant", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="preset, .gguf file or checkpoint dir")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per speed figure")
    parser.add_argument("--no-transformers", action="store_true", help="skip transformers' perplexity")
    parser.add_argument("--speed-only", action="store_true", help="skip perplexity and agreement")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = {"model": args.model, "max_num_seqs": 16, "enable_prefix_caching": False, "device": "cpu"}
    engines = {
        "fp32": Engine(EngineConfig(**base)),
        "int8": Engine(EngineConfig(**base, quantization="int8")),
    }
    fp32, int8 = engines["fp32"], engines["int8"]
    start = time.perf_counter()
    ppl, ppl_hf, agree, exact = {"fp32": math.nan, "int8": math.nan}, None, math.nan, math.nan
    if not args.speed_only:
        ppl = {name: perplexity(e) for name, e in engines.items()}
        ppl_hf = None if args.no_transformers else transformers_perplexity(args.model, windows(fp32))
        agree, exact = agreement(fp32, int8)
    speed = interleaved_speeds(engines, args.reps)
    med = {k: statistics.median(v) for k, v in speed.items()}
    # ratio: median of the per-repetition ratios (each pair ran back to back, under the same load)
    paired = {
        c: statistics.median(i / f for i, f in zip(speed[("int8", c)], speed[("fp32", c)], strict=True))
        for c in (1, 16)
    }
    mib = 2**20
    held = {n: held_bytes(e) / mib for n, e in engines.items()}
    step = {n: step_bytes(e) / mib for n, e in engines.items()}
    rel = ppl["int8"] / ppl["fp32"] - 1
    rows: list[list[Any]] = [
        [
            "decode tok/s, 1 request",
            med[("int8", 1)],
            med[("fp32", 1)],
            paired[1],
            ">= 2x",
        ],
        [
            "output tok/s, 16 in flight",
            med[("int8", 16)],
            med[("fp32", 16)],
            paired[16],
            "",
        ],
        ["weights held, MiB", held["int8"], held["fp32"], held["int8"] / held["fp32"], ""],
        ["weights read per step, MiB", step["int8"], step["fp32"], step["int8"] / step["fp32"], ""],
        ["perplexity (README prose)", ppl["int8"], ppl["fp32"], 1 + rel, "within 2%"],
        ["greedy agreement, 64 tok x 20", agree, 1.0, agree, ""],
        ["prompts identical over 64 tok", exact, 1.0, exact, ""],
    ]
    if ppl_hf is not None:
        rows.append(["perplexity, transformers GGUF", ppl_hf, ppl["fp32"], ppl_hf / ppl["fp32"], "= fp32"])
    load = os.getloadavg()[0]
    title = f"int8 vs fp32 (Q4_1 dequantized), {args.model}, CPU, {args.threads} threads, load avg {load:.1f}"
    print_table(title, ["metric", "int8", "fp32", "ratio", "target"], rows)
    write_result(
        "quant",
        {
            "model": args.model,
            "threads": args.threads,
            "load_avg_1m": load,
            "reps": args.reps,
            "decode_tok_s": {f"{n}_c{c}": v for (n, c), v in speed.items()},
            "int8_over_fp32_paired_median": {f"c{c}": v for c, v in paired.items()},
            "perplexity": {**ppl, "transformers_gguf": ppl_hf, "int8_relative_change": rel},
            "greedy_agreement": agree,
            "exact_match": exact,
            "weights_held_mib": held,
            "weights_per_step_mib": step,
            "seconds": time.perf_counter() - start,
        },
    )
    return 0

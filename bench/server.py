"""Reference engine vs transformers generate() on the same checkpoint, side by side in one run.

Same weights (a preset exported as an HF checkpoint, loaded by both), same prompts: 128 random prompt
tokens, 128 greedy output tokens with EOS ignored (min_new_tokens for transformers).

throughput  engine output tokens/s with 1, 4, 16, 32 requests in flight (submitted together to the
            running engine loop, the way a server sees them) vs transformers one request at a time and
            vs a static batch of the same size.
roofline    engine decode tokens/s at concurrency 1 vs memory bandwidth / weight bytes read per step;
            bandwidth = a read-only pass over a buffer of the step's weight bytes (median of repeats),
            measured right before each decode run; a copy burst (best of 3) is shown for context.
prefix      time to first token of a 1024-token prompt whose first 960 tokens are cached, vs cold.

vllm        the reference server and vLLM CPU side by side over HTTP on the same exported checkpoints
            (SmolLM2-135M and a 6-layer random Llama), when vLLM's venv exists (bench/vllm_side.py).

    python -m bench server [--quick] [--presets tiny,smollm2-135m] [--threads N] [--update-docs]
                           [--vllm-python PATH] [--side-by-side auto|only|off]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from bench import vllm_side
from bench.common import print_table, write_result
from reference_server import hugepages
from reference_server.config import EngineConfig
from reference_server.engine import Engine, RequestOutput
from reference_server.export import export_model
from reference_server.model import Linear
from reference_server.sampling import SamplingParams
from tollgate.docgen import write_section

PROMPT_LEN = 128
OUTPUT_LEN = 128


def copy_bandwidth(device: str, mib: int = 128, reps: int = 3) -> float:
    """Bytes/s of a large tensor copy (bytes read + bytes written), best of a few: a short-burst peak,
    shown for context only (see read_bandwidth)."""
    src = torch.ones(mib * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * src.numel() * 4 / min(timed(device, lambda: dst.copy_(src), reps))


def read_bandwidth(device: str, nbytes: int, reps: int = 5) -> float:
    """Bytes/s of a read-only pass (sum) over a buffer of `nbytes`, median of `reps`.

    The roofline's bandwidth, measured the way a batch-1 decode step reads memory: it streams every
    weight once (read-only, writes little), once per step, over a buffer of the same size, and the
    decode figure it is compared with is a median of sustained runs, so this is a median too. It
    replaced the best of 3 copy bursts (bytes read + written), which compared a peak of another access
    pattern with a median: on this 2-core shared machine the burst ran 1.3-2x the median read (e.g.
    19 vs 11.6 GB/s at 1 thread, measured), so it understated the decode's fraction of the roofline.
    The buffer sits in memory of the engine's weights' kind (huge pages on CPU, see hugepages.py)."""
    src = weight_like(device, nbytes // 4)
    src.sum()
    return src.numel() * 4 / statistics.median(timed(device, src.sum, reps))


def gemv_bandwidth(device: str, nbytes: int, reps: int = 5) -> float:
    """Bytes/s of one batch-1 matmul through the engine's own Linear (its CPU column-block layout, see
    model.Linear) over a weight-sized [K, 1024] float32 matrix, median of `reps`: what the matmul
    reaches at batch 1. Context row, not the roofline: it splits the engine's gap into kernel
    efficiency (this / read_bandwidth) and per-step overhead."""
    rows = nbytes // 4 // 1024
    layer = Linear(rows, 1024)
    layer.weight.data = weight_like(device, rows * 1024).view(rows, 1024)
    if device == "cpu" and torch.backends.mkldnn.is_available():
        layer.pack()
        layer.weight.data = weight_like(device, layer.weight.numel()).view(layer.weight.shape)
    x = torch.ones(1, rows, device=device)
    with torch.inference_mode():
        layer(x)
        times = timed(device, lambda: layer(x), reps)
    return rows * 1024 * 4 / statistics.median(times)


def weight_like(device: str, numel: int) -> torch.Tensor:
    """float32 ones in memory like the engine's weights: a huge-page arena on CPU where the OS has one."""
    buf = hugepages.hugepage_buffer(numel * 4) if device == "cpu" else None
    if buf is None:
        return torch.ones(numel, device=device)
    return buf.view(torch.float32).fill_(1.0)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(device: str, step: Callable[[], object], reps: int) -> list[float]:
    """Seconds of each of `reps` calls of `step`, the device synchronised before and after each."""
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def weight_bytes_per_step(engine: Engine) -> int:
    """Bytes of weights a decode step reads: every matrix and norm; of the embedding only when it is
    the (tied) output head, otherwise one row per token, which is negligible."""
    model = engine.model
    seen, total = set(), 0
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen or (name == "embed.weight" and not model.args.tie_word_embeddings):
            continue
        seen.add(id(p))
        total += p.numel() * p.element_size()
    return total


def run_engine(engine: Engine, prompts: list[list[int]], params: SamplingParams) -> tuple[float, list[Any]]:
    """Submit all prompts at once to the running loop; return wall seconds and each request's final times."""
    done = threading.Semaphore(0)
    finals: dict[str, RequestOutput] = {}

    def on_output(out: RequestOutput) -> None:
        if out.finished:
            finals[out.request_id] = out
            done.release()

    start = time.perf_counter()
    for i, prompt in enumerate(prompts):
        engine.add_request(f"bench-{time.monotonic_ns()}-{i}", prompt, params, on_output)
    for _ in prompts:
        done.acquire()
    wall = time.perf_counter() - start
    assert all(o.num_output_tokens == params.max_tokens for o in finals.values())
    return wall, [o.times for o in finals.values()]


def decode_rate(times: Any, n_out: int) -> float:
    """Decode tokens/s of one request: the tokens after the first, over the time since the first."""
    return (n_out - 1) / (times.last_token - times.first_token)


def hf_generate(hf: Any, prompts: list[list[int]], n_out: int) -> float:
    ids = torch.tensor(prompts, device=hf.device)
    sync(hf.device.type)
    start = time.perf_counter()
    with torch.inference_mode():
        out = hf.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n_out,
            min_new_tokens=n_out,
            do_sample=False,
            pad_token_id=0,
        )
    sync(hf.device.type)
    wall = time.perf_counter() - start
    assert out.shape[1] == ids.shape[1] + n_out
    return wall


def random_prompts(rng: random.Random, n: int, length: int, vocab: int) -> list[list[int]]:
    return [[rng.randrange(vocab) for _ in range(length)] for _ in range(n)]


def prefix_ttft(
    engine: Engine, rng: random.Random, length: int, cached: int, reps: int
) -> tuple[float, float]:
    """Median TTFT (s) of a prompt whose first `cached` tokens were seen before, and of a cold one."""
    vocab, one = engine.vocab_size, SamplingParams(max_tokens=1, temperature=0.0, ignore_eos=True)
    hits, colds = [], []
    for _ in range(reps):
        shared = random_prompts(rng, 1, cached, vocab)[0]
        warm, hit = (shared + tail for tail in random_prompts(rng, 2, length - cached, vocab))
        cold = random_prompts(rng, 1, length, vocab)[0]
        run_engine(engine, [warm], one)
        (t_hit,) = run_engine(engine, [hit], one)[1]
        assert t_hit.num_cached_prompt_tokens == cached, t_hit.num_cached_prompt_tokens
        (t_cold,) = run_engine(engine, [cold], one)[1]
        hits.append(t_hit.first_token - t_hit.arrival)
        colds.append(t_cold.first_token - t_cold.arrival)
    return statistics.median(hits), statistics.median(colds)


@dataclass
class Plan:
    """How much of the benchmark a preset gets (the bigger presets get less, to stay within ~5 minutes)."""

    concs: list[int]
    output_len: int = OUTPUT_LEN
    reps: int = 2  # engine and transformers runs per point, interleaved; medians reported
    reps_conc1: int = 5  # concurrency 1 is cheap and the noisiest
    compiled: bool = False  # also time concurrency 1 on an engine with compile_decode (+5-60 s)


PLANS = {
    "tiny": Plan([1, 4, 16, 32], reps=3, reps_conc1=9, compiled=True),
    "gpt2-small-size": Plan([1, 16], output_len=32, reps=1, reps_conc1=2),
    "smollm2-135m": Plan([1, 16], output_len=32, reps=1, reps_conc1=2),
    "llama-1b-size": Plan([1, 4, 16, 32], reps=2),
}


def say(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class Conc1Runs:
    """Per-run figures at concurrency 1, where each decode run follows its own bandwidth probes (the
    machine's share moves with its load), so each run's fraction of the roofline can be reported."""

    roofline_tps: list[float] = field(default_factory=list)
    copy_roofline_tps: list[float] = field(default_factory=list)
    gemv_tps: list[float] = field(default_factory=list)
    decode_tps: list[float] = field(default_factory=list)
    hf_walls: list[float] = field(default_factory=list)
    compiled_walls: list[float] = field(default_factory=list)
    compiled_decode_tps: list[float] = field(default_factory=list)


class PresetBench:
    """The engine (and its compiled twin when the plan asks), and transformers on the same exported
    checkpoint, run through one preset's plan on the same seeded prompts."""

    def __init__(self, preset: str, device: str, plan: Plan) -> None:
        import transformers

        self.device, self.plan, self.rng = device, plan, random.Random(0)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_model(preset, Path(tmp) / preset)
            config = EngineConfig(
                model=str(path), device=device, max_num_seqs=max(plan.concs), num_kv_blocks=1024
            )
            self.engine = Engine(config)
            self.compiled = Engine(replace(config, compile_decode=True)) if plan.compiled else None
            self.dtype = self.engine.runner.dtype
            self.hf = (
                transformers.AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype).to(device).eval()
            )
        self.params = SamplingParams(max_tokens=plan.output_len, temperature=0.0, ignore_eos=True)
        self.wbytes = 0  # known once the engine has started (it may repack its weights)
        self.conc1 = Conc1Runs()

    def start(self) -> None:
        """Start the engines and run each side once, untimed."""
        self.engine.start()
        if self.compiled is not None:
            self.compiled.start()
        vocab = self.engine.vocab_size
        run_engine(
            self.engine,
            random_prompts(self.rng, 2, PROMPT_LEN, vocab),
            SamplingParams(max_tokens=8, ignore_eos=True),
        )
        hf_generate(self.hf, random_prompts(self.rng, 1, PROMPT_LEN, vocab), 8)
        self.wbytes = weight_bytes_per_step(self.engine)

    def point(self, c: int) -> dict[str, float]:
        """Tokens/s of the engine at concurrency c, and of transformers' static batch of c (c > 1)."""
        n_out, walls, static = self.plan.output_len, [], []
        for _ in range(self.plan.reps_conc1 if c == 1 else self.plan.reps):
            prompts = random_prompts(self.rng, c, PROMPT_LEN, self.engine.vocab_size)
            if c == 1:
                self._probe_bandwidth()
            wall, times = run_engine(self.engine, prompts, self.params)
            walls.append(wall)
            if c == 1:
                self._single_stream(prompts, times)
            else:
                static.append(hf_generate(self.hf, prompts, n_out))
        point = {"engine_tps": c * n_out / statistics.median(walls)}
        if static:
            point["hf_static_batch_tps"] = c * n_out / statistics.median(static)
        return point

    def _probe_bandwidth(self) -> None:
        device, wbytes = self.device, self.wbytes
        self.conc1.roofline_tps.append(read_bandwidth(device, wbytes) / wbytes)
        self.conc1.copy_roofline_tps.append(copy_bandwidth(device) / wbytes)
        self.conc1.gemv_tps.append(gemv_bandwidth(device, wbytes) / wbytes)

    def _single_stream(self, prompts: list[list[int]], times: Any) -> None:
        """After the engine's concurrency-1 run: its decode rate, transformers' and the compiled engine's run."""
        n_out = self.plan.output_len
        self.conc1.decode_tps.append(decode_rate(times[0], n_out))
        self.conc1.hf_walls.append(hf_generate(self.hf, prompts, n_out))
        if self.compiled is not None:
            wall, times = run_engine(self.compiled, prompts, self.params)
            self.conc1.compiled_walls.append(wall)
            self.conc1.compiled_decode_tps.append(decode_rate(times[0], n_out))

    def roofline(self) -> dict[str, Any]:
        runs = self.conc1
        return {
            "weight_bytes_per_step": self.wbytes,
            "bandwidth_bytes_per_s": statistics.median(runs.roofline_tps) * self.wbytes,
            "roofline_tps": statistics.median(runs.roofline_tps),
            "engine_decode_tps": statistics.median(runs.decode_tps),
            "fraction_per_run": [d / r for d, r in zip(runs.decode_tps, runs.roofline_tps, strict=True)],
            "copy_burst_roofline_tps": statistics.median(runs.copy_roofline_tps),
            "gemv_line_tps": statistics.median(runs.gemv_tps),
        }

    def compiled_result(self) -> dict[str, Any]:
        runs = self.conc1
        return {
            "engine_tps": self.plan.output_len / statistics.median(runs.compiled_walls),
            "engine_decode_tps": statistics.median(runs.compiled_decode_tps),
            "fraction_per_run": [
                d / r for d, r in zip(runs.compiled_decode_tps, runs.roofline_tps, strict=True)
            ],
        }


def bench_preset(preset: str, device: str, plan: Plan) -> dict[str, Any]:
    bench = PresetBench(preset, device, plan)
    bench.start()
    n_out = plan.output_len
    result: dict[str, Any] = {
        "preset": preset,
        "device": device,
        "dtype": str(bench.dtype),
        "output_tokens": n_out,
    }
    conc = {}
    for c in plan.concs:
        conc[str(c)] = bench.point(c)
        say(f"{preset} conc {c}: {conc[str(c)]}")
    result["hf_one_at_a_time_tps"] = n_out / statistics.median(bench.conc1.hf_walls)
    result["concurrency"] = conc
    result["roofline"] = bench.roofline()
    if bench.compiled is not None:
        result["compiled"] = bench.compiled_result()
        bench.compiled.shutdown()
    engine = bench.engine
    length = min(1024, engine.max_model_len - 1)
    hit, cold = prefix_ttft(engine, bench.rng, length, 960, plan.reps)
    result["prefix"] = {"prompt_tokens": length, "cached_tokens": 960, "ttft_hit_s": hit, "ttft_cold_s": cold}
    say(f"{preset} prefix TTFT hit {hit * 1e3:.0f} ms, cold {cold * 1e3:.0f} ms")
    engine.shutdown()
    return result


def rows_for(r: dict[str, Any]) -> list[list[Any]]:
    """Table rows: engine, baseline, ratio, and the issue's target (set for the tiny preset only)."""
    p, conc, roof, pre = r["preset"], r["concurrency"], r["roofline"], r["prefix"]
    single = r["hf_one_at_a_time_tps"]
    targets = p == "tiny"
    rows = []

    def add(metric: str, engine: float, baseline: float, target: str = "") -> None:
        rows.append([p, metric, engine, baseline, engine / baseline, target if targets else ""])

    add("conc 1 tok/s vs transformers", conc["1"]["engine_tps"], single, ">= 1.5")
    for c, row in conc.items():
        if "hf_static_batch_tps" in row:
            add(
                f"conc {c} tok/s vs static batch {c}",
                row["engine_tps"],
                row["hf_static_batch_tps"],
                ">= 1.3" if c == "16" else "",
            )
    if "32" in conc:
        add("conc 32 tok/s vs one-at-a-time", conc["32"]["engine_tps"], single, ">= 6")
    add("conc 1 decode tok/s vs roofline", roof["engine_decode_tps"], roof["roofline_tps"], ">= 0.6")
    add("  same, vs copy-burst roofline", roof["engine_decode_tps"], roof["copy_burst_roofline_tps"])
    add("  same, vs one weight-sized GEMV", roof["engine_decode_tps"], roof["gemv_line_tps"])
    if comp := r.get("compiled"):
        add("--compile: conc 1 tok/s vs transformers", comp["engine_tps"], single, ">= 1.5")
        add("--compile: conc 1 decode vs roofline", comp["engine_decode_tps"], roof["roofline_tps"], ">= 0.6")
    add(
        f"TTFT ms, {pre['cached_tokens']}/{pre['prompt_tokens']} cached vs cold",
        pre["ttft_hit_s"] * 1e3,
        pre["ttft_cold_s"] * 1e3,
        "<= 0.25",
    )
    return rows


NOTES = """Same weights for both sides (the preset exported as an HF checkpoint), 128 random prompt tokens,
greedy, EOS ignored; tok/s are output tokens per wall second, medians of interleaved runs. Baselines:
transformers `generate()` one request at a time, and in static batches of the same size. Roofline =
read bandwidth (summing a buffer of the step's weight bytes, median of 5, same thread count, right
before each decode run) / weight bytes read per decode step; the copy-burst row uses the best of 3
large copies (bytes read + written) instead, the old measure; the GEMV row times one batch-1 matmul
over a weight-sized matrix through the engine's Linear (what the matmul reaches; the rest of the gap is
per-step overhead). `--compile` rows: a second engine with the batch-1 decode step compiled
(`tollgate serve --compile`), run right after the default one on the same prompts. `gpt2-small-size`: 32 output tokens, concurrency 1 and 16 only, one run each (time budget).
The targets are the issue's, for the tiny preset; figures move with the machine's load (in the title)."""


def markdown(rows: list[list[Any]], header: str) -> str:
    cols = ["preset", "metric", "engine", "baseline", "ratio", "target"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join([*lines, "", NOTES])


def concs_subset(concs: list[int], flag: str) -> list[int]:
    """The plan's concurrencies named by --concurrency; 1 always runs (the baseline and the roofline)."""
    try:
        wanted = [int(c) for c in flag.split(",")]
    except ValueError:
        raise SystemExit(f"--concurrency={flag}: give a comma list of integers such as 1,16") from None
    if bad := [c for c in wanted if c not in concs]:
        raise SystemExit(f"--concurrency={flag}: {bad} not in this preset's plan {concs}")
    return sorted({1, *wanted})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench server", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one repetition, tiny preset only; side by side: 6-layer checkpoint, fewer requests",
    )
    parser.add_argument("--presets", help="default: tiny,gpt2-small-size on CPU; tiny,llama-1b-size on CUDA")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all)"
    )
    parser.add_argument(
        "--concurrency", help="comma list, a subset of each preset's plan (e.g. 1); default: the whole plan"
    )
    parser.add_argument(
        "--update-docs",
        "--update-readme",  # its old name (the table lived in README.md); still accepted
        dest="update_docs",
        action="store_true",
        help="write the table into docs/benchmarks.md (section bench-server); --update-readme is the old name",
    )
    parser.add_argument(
        "--vllm-python", type=Path, default=vllm_side.DEFAULT_VLLM_PYTHON, help="python of vLLM's venv"
    )
    parser.add_argument(
        "--side-by-side",
        choices=["auto", "only", "off"],
        default="auto",
        help="reference server vs vLLM over HTTP: auto = when --vllm-python exists; only = skip the rest",
    )
    parser.add_argument(
        "--peer-checkpoints",
        help=f"comma list of side-by-side checkpoints ({','.join(vllm_side.CHECKPOINTS)}); default: all",
    )
    args = parser.parse_args(argv)
    if args.side_by_side == "only" or (args.side_by_side == "auto" and args.vllm_python.exists()):
        if not args.vllm_python.exists():
            raise SystemExit(
                f"--vllm-python {args.vllm_python}: missing; build the peer venv (make test-peers)"
            )
        names = args.peer_checkpoints.split(",") if args.peer_checkpoints else None
        if bad := set(names or ()) - set(vllm_side.CHECKPOINTS):
            raise SystemExit(
                f"--peer-checkpoints: unknown {sorted(bad)}; choose from {vllm_side.CHECKPOINTS}"
            )
        peers = vllm_side.side_by_side(args.vllm_python, say, quick=args.quick, names=names)
        cols = ["checkpoint", "metric", "reference", "vLLM", "ratio", "target"]
        load = os.getloadavg()[0]
        title = f"reference server vs vLLM CPU over HTTP (fp32, load avg {load:.1f})"
        print_table(title, cols, vllm_side.rows(peers))
        write_result("server_vllm", {"load_avg_1m": load, "results": peers})
        if args.side_by_side == "only":
            return 0
    torch.set_num_threads(args.threads)
    default = "tiny,llama-1b-size" if args.device == "cuda" else "tiny,gpt2-small-size,smollm2-135m"
    presets = ["tiny"] if args.quick else (args.presets or default).split(",")
    results, rows = [], []
    for preset in presets:
        plan = PLANS.get(preset, PLANS["tiny"])
        if args.quick:
            plan = replace(plan, reps=1, reps_conc1=2)
        if args.concurrency:
            plan = replace(plan, concs=concs_subset(plan.concs, args.concurrency))
        results.append(bench_preset(preset, args.device, plan))
        rows += rows_for(results[-1])
    load = os.getloadavg()[0]
    where = "CUDA bf16" if args.device == "cuda" else f"CPU fp32, {args.threads} threads, load avg {load:.1f}"
    title = f"reference engine vs transformers ({where})"
    print_table(title, ["preset", "metric", "engine", "baseline", "ratio", "target"], rows)
    payload = {"device": args.device, "threads": args.threads, "load_avg_1m": load, "quick": args.quick}
    write_result("server", {**payload, "results": results})
    if args.update_docs:
        write_section(
            "bench-server", markdown(rows, f"Reference engine (`python -m bench server`), {title}:")
        )
    return 0

"""Drive AIPerf (and GuideLLM when installed) against the compiled mock, side by side with Tollgate.

The peers are never installed into the project's venv: put them in their own venvs, e.g.
    python -m venv .peers/aiperf && .peers/aiperf/bin/pip install aiperf==0.13.0
    python -m venv .peers/guidellm && .peers/guidellm/bin/pip install guidellm==0.8.1
(or point AIPERF_BIN / GUIDELLM_BIN at their executables). AIPerf needs a tokenizer from a Hugging Face
cache: a small byte-level BPE is trained here with `tokenizers` and laid out as repo `local/tok`
(HF_HUB_OFFLINE=1, nothing is downloaded).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import run_load
from bench.fastmock import build as build_fast_mock
from bench.fastmock import start_fast_mock

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = "0" * 40


def peer_bin(name: str) -> Path | None:
    """The peer's executable: $<NAME>_BIN, else .peers/<name>/bin/<name>; None when not installed."""
    explicit = os.environ.get(f"{name.upper()}_BIN")
    path = Path(explicit) if explicit else REPO / ".peers" / name / "bin" / name
    return path if path.is_file() else None


def hf_cache_tokenizer(home: Path) -> Path:
    """A trained byte-level BPE as Hugging Face cache repo `local/tok` under `home` (HF_HOME)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from loadgen.workloads import WORDS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    rng = np.random.default_rng(1)
    corpus = [" ".join(rng.choice(WORDS, size=30)) for _ in range(2000)]
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        show_progress=False,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    repo = home / "hub" / "models--local--tok"
    snap = repo / "snapshots" / SNAPSHOT
    snap.mkdir(parents=True, exist_ok=True)
    tok.save(str(snap / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|endoftext|>",
        "model_max_length": 4096,
    }
    (snap / "tokenizer_config.json").write_text(json.dumps(config))
    (snap / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(SNAPSHOT)
    return snap


def run_aiperf(binary: Path, url: str, users: int, tokens: int, requests: int) -> dict[str, Any]:
    """One AIPerf profile run; its chunks/s (completion tokens over its benchmark duration), TTFT, ITL."""
    with tempfile.TemporaryDirectory(prefix="tollgate-aiperf-") as tmp:
        home, artifacts = Path(tmp) / "hf", Path(tmp) / "artifacts"
        hf_cache_tokenizer(home)
        cmd = [str(binary), "profile", "--model", "mock-model", "--url", url, "--endpoint-type", "chat"]
        cmd += ["--streaming", "--concurrency", str(users), "--request-count", str(requests)]
        cmd += ["--synthetic-input-tokens-mean", "8", "--output-tokens-mean", str(tokens)]
        cmd += ["--tokenizer", "local/tok", "--artifact-dir", str(artifacts), "--ui-type", "none"]
        env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        path = artifacts / "profile_export_aiperf.json"
        if proc.returncode != 0 or not path.is_file():
            return {"error": f"aiperf exited {proc.returncode}: {proc.stderr[-300:] or proc.stdout[-300:]}"}
        data = json.loads(path.read_text())
    duration = data["benchmark_duration"]["avg"]
    chunks = data["inter_chunk_latency"]["count"] + data["request_count"]["avg"]  # gaps + first chunks
    return {
        "chunks_per_s": chunks / duration,
        "ttft_p50_ms": data["time_to_first_token"]["p50"],
        "ttft_p99_ms": data["time_to_first_token"]["p99"],
        "itl_p50_ms": data["inter_chunk_latency"]["p50"],
        "itl_p99_ms": data["inter_chunk_latency"]["p99"],
        "requests": int(data["request_count"]["avg"]),
    }


def run_guidellm(binary: Path, url: str, users: int, tokens: int, requests: int) -> dict[str, Any]:
    """One GuideLLM 0.8 `run` at fixed concurrency; its chunks/s (the mock sends one chunk per token), TTFT, ITL.

    GuideLLM's ITL is per request, (E2E - TTFT) / (tokens - 1): a mean gap, not the gaps themselves."""
    with tempfile.TemporaryDirectory(prefix="tollgate-guidellm-") as tmp:
        home, report = Path(tmp) / "hf", Path(tmp) / "guidellm.json"
        hf_cache_tokenizer(home)
        cmd = [str(binary), "run", "--backend", f"kind=openai_http,target={url}"]
        cmd += ["--profile", f"kind=concurrent,streams={users}"]
        cmd += ["--constraint", f"kind=max_requests,count={requests}"]
        cmd += ["--data", f"kind=synthetic_text,prompt_tokens=8,output_tokens={tokens}"]
        cmd += ["--tokenizer", "kind=hf_auto,model=local/tok", "--output", f"kind=json,path={report}"]
        cmd += ["--disable-console-interactive"]
        env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not report.is_file():
            return {"error": f"guidellm exited {proc.returncode}: {proc.stderr[-300:] or proc.stdout[-300:]}"}
        bench = json.loads(report.read_text())["benchmarks"][0]
    metrics = bench["metrics"]
    ttft = metrics["time_to_first_token_ms"]["successful"]["percentiles"]
    itl = metrics["inter_token_latency_ms"]["successful"]["percentiles"]
    return {
        "chunks_per_s": metrics["output_token_count"]["successful"]["total_sum"] / bench["duration"],
        "ttft_p50_ms": ttft["p50"],
        "ttft_p99_ms": ttft["p99"],
        "itl_p50_ms": itl["p50"],
        "itl_p99_ms": itl["p99"],
        "requests": metrics["request_totals"]["successful"],
    }


def peers(out: Path, requests: int) -> dict[str, Any]:
    """Max chunks/s and TTFT/ITL error of Tollgate and each installed peer against one compiled mock
    streaming as fast as it can (5 ms TTFT, 0.1 ms gaps: far beyond any client), 64 streams of 256 tokens."""
    users, tokens, ttft_us, itl_us = 64, 256, 5000, 100
    if build_fast_mock() is None:
        return {"skipped": "no C compiler for bench/fastmock"}
    results: dict[str, Any] = {"truth": {"ttft_ms": ttft_us / 1000, "itl_ms": itl_us / 1000}}
    with start_fast_mock(ttft_us, itl_us) as url:
        summary, frame = run_load(
            out,
            *f"--url {url} --users {users} --requests {requests} --output-tokens {tokens} --input-tokens 8".split(),
        )
        results["tollgate"] = {
            "chunks_per_s": float(frame["n_chunks"].sum()) / summary["duration_s"],
            "ttft_p50_ms": summary["metrics"]["ttft_ms"]["p50"],
            "ttft_p99_ms": summary["metrics"]["ttft_ms"]["p99"],
            "itl_p50_ms": summary["metrics"]["itl_ms"]["p50"],
            "itl_p99_ms": summary["metrics"]["itl_ms"]["p99"],
            "client_bound": summary["validity"]["client_bound"],
        }
        aiperf = peer_bin("aiperf")
        results["aiperf"] = (
            run_aiperf(aiperf, url, users, tokens, requests)
            if aiperf
            else {"skipped": "not installed (.peers/aiperf)"}
        )
        guidellm = peer_bin("guidellm")
        results["guidellm"] = (
            run_guidellm(guidellm, url, users, tokens, requests)
            if guidellm
            else {"skipped": "not installed (.peers/guidellm)"}
        )
    return results


def peer_rows(res: dict[str, Any]) -> list[list[Any]]:
    if "truth" not in res:
        return [["peers", "-", "-", "-", res.get("skipped", "skipped")]]
    truth = res["truth"]
    rows = []
    for client in ("tollgate", "aiperf", "guidellm"):
        r = res.get(client, {})
        if "chunks_per_s" not in r:
            rows.append([f"{client}: max chunks/s", "-", "-", "-", r.get("skipped") or r.get("error", "-")])
            continue
        rows.append(
            [
                f"{client}: max chunks/s, 64 streams, as fast as the mock goes",
                "-",
                r["chunks_per_s"],
                "-",
                "-",
            ]
        )
        rows.append(
            [
                f"{client}: TTFT p50 error at that load",
                truth["ttft_ms"],
                r["ttft_p50_ms"],
                r["ttft_p50_ms"] - truth["ttft_ms"],
                "-",
            ]
        )
        rows.append(
            [
                f"{client}: ITL p50 error at that load",
                truth["itl_ms"],
                r["itl_p50_ms"],
                r["itl_p50_ms"] - truth["itl_ms"],
                "-",
            ]
        )
    return rows

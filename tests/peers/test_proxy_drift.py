"""Drift for a server that writes no capture log: `tollgate proxy` in front of real vLLM.

The proxy must not change what the load generator measures (vLLM's empty-text token chunks still
arrive one per token), its capture must hold vLLM's own token counts, and `tollgate drift` must
find no drift between two captures of the same traffic and find it when the prompts change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.launch import start_proxy
from tests.peers.tools import load, requests_of, scrape, summary_brief, tollgate, total
from tollgate.contracts.capture import validate_capture_record

pytestmark = pytest.mark.timeout(600)

ENGLISH = [
    "What is the capital of France?", "Name three primary colours.", "What is two plus two?",
    "Say hello in French.", "Which planet is closest to the sun?", "How many legs does a spider have?",
]  # fmt: skip
N = 24  # per capture: the drift detectors decide from 20 values per feature
OUTPUT_TOKENS = 4
# Long Russian passages: other script, ~10x the prompt tokens.
RUSSIAN = "Расскажи подробно историю города Санкт-Петербург, его архитектуру, реки, мосты и музеи. " * 6


def _dataset(path: Path, prompts: list[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"messages": [{"role": "user", "content": p}]}) + "\n" for p in prompts)
    )
    return path


def _captured(path: Path, n: int) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == n, f"{len(lines)} capture lines for {n} requests"
    assert all(validate_capture_record(r) == [] for r in lines)
    return lines


def _run(proxy_url: str, vllm, out: Path, dataset: Path, n: int) -> tuple[list[dict], float, float]:
    before = scrape(vllm.url)
    code, run_dir, summary, stderr = load(
        out, proxy_url, "--endpoint", "chat", "--users", "2", "--requests", str(n), "--dataset", str(dataset),
        "--output-tokens", str(OUTPUT_TOKENS), "--ignore-eos", "--temperature", "0",
    )  # fmt: skip
    after = scrape(vllm.url)
    assert code == 0 and summary["requests"]["completed"] == n, f"{summary_brief(summary)}\n{stderr[-2000:]}"
    rows = requests_of(run_dir)
    assert (rows["n_chunks"] == rows["output_tokens"]).all()  # relayed event for event
    prompted = total(after, "vllm:prompt_tokens_total") - total(before, "vllm:prompt_tokens_total")
    generated = total(after, "vllm:generation_tokens_total") - total(before, "vllm:generation_tokens_total")
    return rows.to_dict("records"), prompted, generated


def test_proxy_capture_feeds_drift(vllm, tmp_path):
    english = _dataset(tmp_path / "en.jsonl", ENGLISH)
    russian = _dataset(tmp_path / "ru.jsonl", [f"{RUSSIAN} ({i})" for i in range(len(ENGLISH))])
    captures = {}
    for name, dataset in (("reference", english), ("same", english), ("shifted", russian)):
        capture = tmp_path / f"{name}.jsonl"
        with start_proxy(vllm.url, "--capture", str(capture)) as proxy:
            rows, prompted, generated = _run(proxy.url, vllm, tmp_path / "runs", dataset, N)
        lines = _captured(capture, N)  # the proxy stopped: every line is on disk
        assert sum(r["prompt_tokens"] for r in lines) == prompted  # vLLM's usage, as vLLM counted
        assert sum(r["completion_tokens"] for r in lines) == generated == N * OUTPUT_TOKENS
        assert all(r["model"] == vllm.model and r["stream"] and r["ttft_s"] <= r["e2e_s"] for r in lines)
        assert sorted(r["prompt_tokens"] for r in lines) == sorted(r["prompt_tokens"] for r in rows)
        captures[name] = capture
    profile = tmp_path / "profile.json"
    built = tollgate("drift", "profile", str(captures["reference"]), "-o", str(profile))
    assert built.returncode == 0, built.stderr
    results = tmp_path / "drift"
    same = tollgate(
        "drift", "check", "--profile", str(profile), "--live", str(captures["same"]), "--out", str(results)
    )
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
    shifted = tollgate(
        "drift", "check", "--profile", str(profile), "--live", str(captures["shifted"]), "--out", str(results)
    )
    assert shifted.returncode == 1, shifted.stdout[-3000:] + shifted.stderr[-2000:]

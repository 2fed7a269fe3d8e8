"""Small checkpoints and engines for the engine tests (fast on CPU, byte-level tokenizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reference_server.config import EngineConfig
from reference_server.engine import Engine
from reference_server.loader import write_checkpoint

MICRO = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 258,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "bos_token_id": 256,
    "eos_token_id": 257,
}


def micro_checkpoint(directory: Path, **overrides: Any) -> Path:
    return write_checkpoint({**MICRO, **overrides}, directory)


def micro_engine(directory: Path, **config: Any) -> Engine:
    if not (directory / "config.json").exists():
        micro_checkpoint(directory)
    return Engine(EngineConfig(model=str(directory), device="cpu", **config))


def assert_no_leak(engine: Engine) -> None:
    stats = engine.stats()
    assert stats.num_running == 0 and stats.num_waiting == 0
    assert stats.num_free_blocks + stats.num_cached_blocks == stats.num_kv_blocks
    assert all(rc == 0 for rc in engine.block_manager.ref_counts)

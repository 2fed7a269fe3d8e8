"""Engine configuration: what the server was asked to run, resolved against the model at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reference_server.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Default KV budget when neither num_kv_blocks nor kv_cache_bytes is given.
DEFAULT_KV_BYTES_CPU = 512 * 2**20
DEFAULT_KV_FRACTION_CUDA = 0.6


@dataclass
class EngineConfig:
    model: str = "tiny"  # a preset (loader.model_names()), a .gguf file or a local HF checkpoint directory
    device: str | None = None  # None -> "cuda" if available else "cpu"
    dtype: str | None = None  # None -> "bfloat16" on cuda, "float32" on cpu
    block_size: int = 16
    num_kv_blocks: int | None = None  # KV budget in blocks, or
    kv_cache_bytes: int | None = None  # KV budget in bytes; default budget when both None
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 2048
    max_model_len: int | None = None  # None -> model's max positions; larger -> ConfigError
    enable_prefix_caching: bool = True
    seed: int = 0
    served_model_name: str | None = None  # name reported by the API; default "tiny" or the dir name
    compile_decode: bool = False  # torch.compile the batch-1 decode step (see model_runner.py)
    quantization: str | None = None  # "int8": weight-only int8 linear layers (see quant.py)
    chat_template: str | None = None  # --chat-template: a jinja file (or the text); None -> the model's own
    inject_latency_ms: float = 0.0  # test/demo only: extra time per engine step (a deliberately slow build)

    def resolve_device(self) -> torch.device:
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device '{device}' requested but CUDA is not available; use --device cpu")
        if not (device == "cpu" or device.startswith("cuda")):
            raise ConfigError(f"unknown device '{device}'; use --device cpu or --device cuda")
        return torch.device(device)

    def resolve_dtype(self, device: torch.device) -> torch.dtype:
        name = self.dtype or ("bfloat16" if device.type == "cuda" else "float32")
        if name not in DTYPES:
            raise ConfigError(f"unknown dtype '{name}'; use --dtype one of {', '.join(DTYPES)}")
        return DTYPES[name]

    def check_limits(self) -> None:
        """Checks that need no model; the model-dependent ones live in Engine start-up."""
        if self.block_size <= 0 or self.block_size & (self.block_size - 1):
            raise ConfigError(f"block_size={self.block_size}: use a power of two such as 16 (--block-size)")
        for name in ("max_num_seqs", "max_num_batched_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)}: must be a positive integer")
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ConfigError(
                f"max_num_batched_tokens={self.max_num_batched_tokens} < max_num_seqs={self.max_num_seqs}: "
                "every running sequence needs a token per step; raise --max-num-batched-tokens"
            )
        if self.quantization not in (None, "int8"):
            raise ConfigError(
                f"quantization='{self.quantization}' is unknown; use --quantization int8 or omit it"
            )
        if self.num_kv_blocks is not None and self.kv_cache_bytes is not None:
            raise ConfigError("give the KV budget once: either num_kv_blocks or kv_cache_bytes, not both")
        if self.num_kv_blocks is not None and self.num_kv_blocks <= 0:
            raise ConfigError(f"num_kv_blocks={self.num_kv_blocks}: must be a positive integer")
        if self.kv_cache_bytes is not None and self.kv_cache_bytes <= 0:
            raise ConfigError(f"kv_cache_bytes={self.kv_cache_bytes}: must be a positive integer")

"""Build the model and its tokenizer from what --model names: a random-weight preset (seeded), a GGUF
preset (a trained model shipped in a Python package, e.g. smollm2-135m), a .gguf file, or a local
Hugging Face checkpoint directory.

Accepted checkpoint architecture: LlamaForCausalLM (config.json + *.safetensors, optional tokenizer.json),
or GGUF files of architecture 'llama' (see gguf_loader.py). GPT-2 and other architectures are rejected
with a ConfigError; they would need their own model code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from reference_server.errors import ConfigError
from reference_server.gguf_loader import GGUF_PRESETS, packaged_gguf, read_gguf
from reference_server.hugepages import move_params_to_hugepages
from reference_server.model import Linear, LlamaModel, ModelArgs
from reference_server.tokenizer import HFTokenizer, Tokenizer, load_tokenizer

ACCEPTED_ARCHITECTURES = ("LlamaForCausalLM",)

# HF-style config.json dicts of the built-in presets.
PRESETS: dict[str, dict[str, Any]] = {
    # ~25M parameters, byte-level vocabulary (256 bytes + <bos> + <eos>).
    "tiny": {
        "vocab_size": 258,
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "max_position_embeddings": 2048,
        "bos_token_id": 256,
        "eos_token_id": 257,
    },
    # GPT-2-small-sized Llama (~124M): 12 layers, 768 wide, 50257 tokens, tied embeddings,
    # SwiGLU width chosen so the MLP has GPT-2's parameter count.
    "gpt2-small-size": {
        "vocab_size": 50257,
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "num_key_value_heads": 12,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
        "bos_token_id": 256,
        "eos_token_id": 257,
    },
    # Llama-3.2-1B-shaped (~1.2B) for GPU benchmarks; 128k vocabulary, tied embeddings.
    "llama-1b-size": {
        "vocab_size": 128256,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "max_position_embeddings": 4096,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "bos_token_id": 256,
        "eos_token_id": 257,
    },
}


def preset_config(name: str) -> dict[str, Any]:
    base = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    return {**base, **PRESETS[name]}


def args_from_config(cfg: dict[str, Any], where: str) -> ModelArgs:
    """Translate an HF config.json dict; `where` names the file for error messages."""
    archs = cfg.get("architectures") or [cfg.get("model_type", "?")]
    if archs[0] not in ACCEPTED_ARCHITECTURES:
        raise ConfigError(
            f"{where}: architecture '{archs[0]}' is not supported; this server runs "
            f"{', '.join(ACCEPTED_ARCHITECTURES)} checkpoints (or --model tiny)"
        )
    if cfg.get("hidden_act", "silu") != "silu":
        raise ConfigError(f"{where}: hidden_act '{cfg['hidden_act']}' is not supported; only 'silu'")
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "llama3"):
        raise ConfigError(f"{where}: rope_type '{rope_type}' is not supported; only 'default' and 'llama3'")
    try:
        heads = cfg["num_attention_heads"]
        return ModelArgs(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads") or heads,
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
            max_position_embeddings=cfg.get("max_position_embeddings", 2048),
            rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
            rope_theta=rope.get("rope_theta", cfg.get("rope_theta", 10000.0)),
            rope_scaling=rope if rope_type == "llama3" else None,
            tie_word_embeddings=cfg.get("tie_word_embeddings", False),
            attention_bias=cfg.get("attention_bias", False),
            mlp_bias=cfg.get("mlp_bias", False),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: required field {exc.args[0]!r} is missing") from exc


def random_state_dict(args: ModelArgs, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in Hugging Face Llama naming (normal(0, 0.02), norms at 1)."""
    gen = torch.Generator().manual_seed(seed)
    h, i = args.hidden_size, args.intermediate_size
    q, kv = args.num_heads * args.head_dim, args.num_kv_heads * args.head_dim

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.02

    sd = {"model.embed_tokens.weight": rand(args.vocab_size, h), "model.norm.weight": torch.ones(h)}
    for n in range(args.num_layers):
        p = f"model.layers.{n}."
        sd |= {
            p + "self_attn.q_proj.weight": rand(q, h),
            p + "self_attn.k_proj.weight": rand(kv, h),
            p + "self_attn.v_proj.weight": rand(kv, h),
            p + "self_attn.o_proj.weight": rand(h, q),
            p + "mlp.gate_proj.weight": rand(i, h),
            p + "mlp.up_proj.weight": rand(i, h),
            p + "mlp.down_proj.weight": rand(h, i),
            p + "input_layernorm.weight": torch.ones(h),
            p + "post_attention_layernorm.weight": torch.ones(h),
        }
    if not args.tie_word_embeddings:
        sd["lm_head.weight"] = rand(args.vocab_size, h)
    return sd


def write_checkpoint(cfg: dict[str, Any], out_dir: Path, seed: int = 0) -> Path:
    """Write an HF-layout checkpoint directory (config.json + model.safetensors) with seeded random weights."""
    from safetensors.torch import save_file

    args = args_from_config(cfg, "config")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    weights = {k: v.contiguous() for k, v in random_state_dict(args, seed).items()}
    save_file(weights, str(out_dir / "model.safetensors"))
    return out_dir


def export_checkpoint(preset: str, out_dir: Path, seed: int = 0) -> Path:
    """A preset as a checkpoint directory, e.g. to load the very same weights into transformers."""
    return write_checkpoint(preset_config(preset), out_dir, seed)


def read_checkpoint(model_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """config.json and all safetensors weights of a local checkpoint directory."""
    from safetensors.torch import load_file

    if not model_dir.is_dir():
        raise ConfigError(
            f"--model {model_dir}: not a directory; give 'tiny' or a local HF checkpoint directory"
        )
    cfg_path = model_dir / "config.json"
    if not cfg_path.exists():
        raise ConfigError(f"{cfg_path}: missing; a checkpoint directory needs config.json and *.safetensors")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{cfg_path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        found = ", ".join(sorted(p.name for p in model_dir.iterdir())) or "nothing"
        raise ConfigError(
            f"{model_dir}: no *.safetensors weights (found {found}); save the model with "
            "save_pretrained(..., safe_serialization=True) or convert .bin weights to safetensors"
        )
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights |= load_file(str(f))
    return cfg, weights


def build_model(
    args: ModelArgs, hf_weights: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype, where: str
) -> LlamaModel:
    """Instantiate the model and copy HF-named weights in, fusing q/k/v and gate/up projections."""
    with torch.device(device):
        model = LlamaModel(args)
    ours = _fit_to_model(model, _our_names(args, hf_weights, where), dtype, where)
    result = model.load_state_dict(ours, strict=False)
    if result.missing_keys:
        raise ConfigError(f"{where}: weights missing for {sorted(result.missing_keys)}")
    _ready_for_cpu(model, device, dtype)
    model.init_rope()
    return model.eval().requires_grad_(False)


def _our_names(args: ModelArgs, hf_weights: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The HF checkpoint's weights under this model's names: q/k/v and gate/up concatenated into one matrix each."""
    sd = {k.removeprefix("model."): v for k, v in hf_weights.items()}

    def take(name: str) -> torch.Tensor:
        if name not in sd:
            raise ConfigError(f"{where}: weight '{name}' missing from the safetensors files")
        return sd[name]

    ours: dict[str, torch.Tensor] = {
        "embed.weight": take("embed_tokens.weight"),
        "norm.weight": take("norm.weight"),
    }
    for n in range(args.num_layers):
        p, a = f"layers.{n}.", f"layers.{n}.self_attn."
        ours[p + "attn.qkv.weight"] = torch.cat(
            [take(a + "q_proj.weight"), take(a + "k_proj.weight"), take(a + "v_proj.weight")]
        )
        ours[p + "attn.o.weight"] = take(a + "o_proj.weight")
        if args.attention_bias:
            ours[p + "attn.qkv.bias"] = torch.cat(
                [take(a + "q_proj.bias"), take(a + "k_proj.bias"), take(a + "v_proj.bias")]
            )
            ours[p + "attn.o.bias"] = take(a + "o_proj.bias")
        m = f"layers.{n}.mlp."
        ours[p + "mlp.gate_up.weight"] = torch.cat([take(m + "gate_proj.weight"), take(m + "up_proj.weight")])
        ours[p + "mlp.down.weight"] = take(m + "down_proj.weight")
        if args.mlp_bias:
            ours[p + "mlp.gate_up.bias"] = torch.cat([take(m + "gate_proj.bias"), take(m + "up_proj.bias")])
            ours[p + "mlp.down.bias"] = take(m + "down_proj.bias")
        ours[p + "input_norm.weight"] = take(f"layers.{n}.input_layernorm.weight")
        ours[p + "post_norm.weight"] = take(f"layers.{n}.post_attention_layernorm.weight")
    head = None if args.tie_word_embeddings else hf_weights.get("lm_head.weight")
    ours["lm_head.weight"] = take("embed_tokens.weight") if head is None else head
    return ours


def _fit_to_model(
    model: LlamaModel, ours: dict[str, torch.Tensor], dtype: torch.dtype, where: str
) -> dict[str, torch.Tensor]:
    """Each weight checked against the shape config.json implies, linear ones transposed, cast to `dtype`."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    transposed = {k for k in expected if _is_linear(k)}  # our Linear keeps weights as [in, out]
    for k, v in ours.items():
        want = expected[k][::-1] if k in transposed else expected[k]
        if tuple(v.shape) != want:
            raise ConfigError(
                f"{where}: weight for '{k}' has shape {tuple(v.shape)}, config.json implies {want}"
            )
    return {k: (v.t() if k in transposed else v).to(dtype) for k, v in ours.items()}


def _ready_for_cpu(model: LlamaModel, device: torch.device, dtype: torch.dtype) -> None:
    """On the CPU: linear weights packed for oneDNN (float32) and every parameter moved onto huge pages."""
    if device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available():
        for module in model.modules():
            if isinstance(module, Linear):
                module.pack()
    if device.type == "cpu":
        move_params_to_hugepages(model)


def _is_linear(name: str) -> bool:
    return name.endswith(".weight") and not name.endswith("norm.weight") and name != "embed.weight"


def model_names() -> list[str]:
    """Every preset --model accepts, random-weight ones first."""
    return [*PRESETS, *GGUF_PRESETS]


def served_name(name: str) -> str:
    """The model name the API reports by default: the preset, or the file/directory name."""
    return name if name in PRESETS or name in GGUF_PRESETS else Path(name).name


def load_model(
    name: str, device: torch.device, dtype: torch.dtype, seed: int
) -> tuple[LlamaModel, dict[str, Any], Tokenizer]:
    """Return (model, HF config dict, tokenizer) for a preset, a .gguf file or a checkpoint directory."""
    if name in PRESETS:
        cfg = preset_config(name)
        args = args_from_config(cfg, f"preset {name}")
        return (
            build_model(args, random_state_dict(args, seed), device, dtype, name),
            cfg,
            load_tokenizer(None, cfg),
        )
    path = packaged_gguf(name) if name in GGUF_PRESETS else Path(name)
    if path.suffix == ".gguf" or path.is_file():
        ckpt = read_gguf(path)
        args = args_from_config(ckpt.config, str(path))
        model = build_model(args, ckpt.weights, device, dtype, str(path))
        tok = HFTokenizer(ckpt.tokenizer, ckpt.tokenizer_config, ckpt.config)
        if "chat_template" in ckpt.tokenizer_config:
            tok.chat_template = ckpt.tokenizer_config["chat_template"]
            tok.chat_template_source = f"{path} (tokenizer.chat_template)"
        return model, ckpt.config, tok
    if not path.exists():
        raise ConfigError(
            f"--model {name}: no such directory or file; use one of the presets ({', '.join(model_names())}), "
            "a .gguf file or a local Hugging Face checkpoint directory"
        )
    cfg, weights = read_checkpoint(path)
    args = args_from_config(cfg, str(path / "config.json"))
    return build_model(args, weights, device, dtype, str(path)), cfg, load_tokenizer(path, cfg)

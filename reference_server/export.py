"""`tollgate export`: write what --model names as a Hugging Face checkpoint directory.

The directory (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, chat_template.jinja,
generation_config.json) is what vLLM, transformers and `tollgate serve --model DIR` load, so every server
in a comparison runs the very same weights. The safetensors are written here from the weights the engine
loads (dequantized float32, Hugging Face names; tied embeddings stored once): transformers refuses
save_pretrained on a GGUF-loaded model.

The export is atomic and idempotent: files go to a temporary sibling directory that is renamed onto DIR
only when complete; a DIR that already holds a checkpoint is replaced, any other non-empty DIR is refused.

Exit codes: 0 written, 2 bad arguments or a model that cannot be exported (the message says why).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from reference_server.errors import ConfigError

EXIT_OK, EXIT_USAGE = 0, 2
CHECKPOINT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "generation_config.json",
)


def export_model(name: str, out: Path) -> Path:
    """Export a GGUF preset or file, or a random-weight preset (no tokenizer.json: byte vocabulary)."""
    from reference_server.gguf_loader import GGUF_PRESETS, packaged_gguf, read_gguf
    from reference_server.loader import PRESETS, args_from_config, preset_config, write_checkpoint
    from reference_server.tokenizer import SIMPLE_TEMPLATE

    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        if name in PRESETS:
            cfg = preset_config(name)
            write_checkpoint(cfg, tmp)
            (tmp / "chat_template.jinja").write_text(SIMPLE_TEMPLATE)
        else:
            path = packaged_gguf(name) if name in GGUF_PRESETS else Path(name)
            if not path.is_file():
                raise ConfigError(
                    f"--model {name}: no such file; give a preset ({', '.join([*PRESETS, *GGUF_PRESETS])}) "
                    "or a .gguf file"
                )
            ckpt = read_gguf(path)
            cfg = ckpt.config
            args_from_config(cfg, str(path))  # the same checks as serving it
            _write_gguf_checkpoint(ckpt, tmp)
        _write_json(tmp / "generation_config.json", _generation_config(cfg))
        for f in tmp.iterdir():  # mkdtemp and safetensors create owner-only files; a checkpoint is shared
            f.chmod(0o644)
        tmp.chmod(0o755)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_gguf_checkpoint(ckpt: Any, tmp: Path) -> None:
    from safetensors.torch import save_file

    cfg = ckpt.config
    weights = dict(ckpt.weights)
    if cfg["tie_word_embeddings"]:
        weights.pop("lm_head.weight", None)
    _write_json(tmp / "config.json", cfg)
    save_file(
        {k: v.contiguous() for k, v in weights.items()}, str(tmp / "model.safetensors"), {"format": "pt"}
    )
    ckpt.tokenizer.save(str(tmp / "tokenizer.json"))
    tok_config = {k: v for k, v in ckpt.tokenizer_config.items() if k != "chat_template"}
    _write_json(
        tmp / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "clean_up_tokenization_spaces": False,
            "model_max_length": cfg["max_position_embeddings"],
            **tok_config,
        },
    )
    if "chat_template" in ckpt.tokenizer_config:
        (tmp / "chat_template.jinja").write_text(ckpt.tokenizer_config["chat_template"])


def _generation_config(cfg: dict[str, Any]) -> dict[str, Any]:
    keys = ("bos_token_id", "eos_token_id", "pad_token_id")
    return {k: cfg[k] for k in keys if k in cfg}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a directory path (it is created)")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise ConfigError(
            f"--out {out}: is a non-empty directory that holds no checkpoint; give a new or empty "
            "directory (an earlier export there is replaced)"
        )


def _replace(tmp: Path, out: Path) -> None:
    """Rename tmp onto out; an earlier checkpoint at out is moved aside first and removed after."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / out.name)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate export",
        description="Write a model as a Hugging Face checkpoint directory that vLLM, transformers and "
        "`tollgate serve --model DIR` load.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="smollm2-135m (packaged GGUF), a .gguf file, or a random-weight preset (tiny, ...)",
    )
    p.add_argument("--out", required=True, type=Path, help="checkpoint directory to write (replaced if one)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = export_model(args.model, args.out)
    except ConfigError as exc:
        print(f"tollgate export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    files = ", ".join(f for f in CHECKPOINT_FILES if (out / f).exists())
    print(f"tollgate export: wrote {out} ({files})")
    return EXIT_OK

"""Tokenizers: byte-level for the `tiny` preset, `tokenizers` (tokenizer.json) for checkpoints.

Chat prompts use the checkpoint's jinja `chat_template` when tokenizer_config.json has one, otherwise the
documented simple template: one line `<role>: <content>` per message, then `assistant:`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reference_server.errors import ConfigError

SIMPLE_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


class Tokenizer:
    """Common interface; see ByteTokenizer and HFTokenizer."""

    eos_token_id: int | None = None
    bos_token_id: int | None = None
    vocab_size: int = 0
    eos_token_ids: frozenset[int] = frozenset()  # all ids that end generation (Llama 3 has several)
    chat_template: str = SIMPLE_TEMPLATE

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def token_text(self, token_id: int) -> str:
        return ""

    def apply_chat_template(self, messages: list[dict]) -> str:
        import jinja2

        env = jinja2.Environment(loader=jinja2.BaseLoader(), keep_trailing_newline=True)
        env.globals["raise_exception"] = _raise_template_error
        template = env.from_string(self.chat_template)
        return template.render(
            messages=messages,
            add_generation_prompt=True,
            bos_token=self.token_text(self.bos_token_id) if self.bos_token_id is not None else "",
            eos_token=self.token_text(self.eos_token_id) if self.eos_token_id is not None else "",
        )


def _raise_template_error(message: str) -> None:
    raise ValueError(f"chat template rejected the messages: {message}")


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes are ids 0..255; 256 is <bos>, 257 is <eos>. Needs no files."""

    def __init__(self) -> None:
        self.bos_token_id = 256
        self.eos_token_id = 257
        self.eos_token_ids = frozenset({257})
        self.vocab_size = 258

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = list(text.encode("utf-8"))
        return [self.bos_token_id, *ids] if add_special_tokens else ids

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def token_text(self, token_id: int) -> str:
        return {256: "<bos>", 257: "<eos>"}.get(token_id, "")


class HFTokenizer(Tokenizer):
    """A checkpoint's tokenizer.json through the `tokenizers` library (no network, no transformers)."""

    def __init__(self, model_dir: Path, model_config: dict[str, Any]) -> None:
        from tokenizers import Tokenizer as RustTokenizer

        path = model_dir / "tokenizer.json"
        try:
            self._tok = RustTokenizer.from_file(str(path))
        except Exception as exc:  # the library raises a bare Exception on malformed files
            raise ConfigError(
                f"{path}: cannot be read by the tokenizers library ({exc}); fix or remove it"
            ) from exc
        tok_config = _read_json(model_dir / "tokenizer_config.json")
        self.vocab_size = max(
            self._tok.get_vocab_size(with_added_tokens=True), model_config.get("vocab_size", 0)
        )
        self.bos_token_id = self._special_id(tok_config.get("bos_token"), model_config.get("bos_token_id"))
        eos_cfg = model_config.get("eos_token_id")
        eos_list = eos_cfg if isinstance(eos_cfg, list) else [eos_cfg] if eos_cfg is not None else []
        self.eos_token_id = self._special_id(tok_config.get("eos_token"), eos_list[0] if eos_list else None)
        self.eos_token_ids = frozenset(i for i in [self.eos_token_id, *eos_list] if i is not None)
        if isinstance(tok_config.get("chat_template"), str):
            self.chat_template = tok_config["chat_template"]

    def _special_id(self, token: Any, fallback: int | None) -> int | None:
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and self._tok.token_to_id(token) is not None:
            return self._tok.token_to_id(token)
        return fallback

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)

    def token_text(self, token_id: int) -> str:
        return self._tok.id_to_token(token_id) or ""


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); fix or remove the file") from exc


def load_tokenizer(model_dir: Path | None, model_config: dict[str, Any]) -> Tokenizer:
    """Byte-level for the tiny preset or a checkpoint without tokenizer.json, else the checkpoint's own."""
    if model_dir is not None and (model_dir / "tokenizer.json").exists():
        return HFTokenizer(model_dir, model_config)
    return ByteTokenizer()

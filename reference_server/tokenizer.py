"""Tokenizers: byte-level for the random-weight presets, `tokenizers` for checkpoints and GGUF files.

Chat template, first found wins: --chat-template FILE, the checkpoint's `chat_template.jinja` (current
transformers' layout), `chat_template` in tokenizer_config.json, `tokenizer.chat_template` in GGUF
metadata. The random-weight presets declare the simple template (one line `<role>: <content>` per
message, then `assistant:`). A checkpoint with none of these has no template: its chat requests are
answered 400, as vLLM does, and completions keep working.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reference_server.errors import ConfigError

SIMPLE_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
NO_TEMPLATE_MESSAGE = (
    "This model's checkpoint defines no chat template (no chat_template.jinja, no chat_template in "
    "tokenizer_config.json), so chat messages cannot be turned into a prompt: you must provide a chat "
    "template if the tokenizer does not define one (restart the server with --chat-template FILE), or "
    "send the prompt to /v1/completions."
)


class NoChatTemplate(ValueError):
    """A chat request for a model without a chat template (answered 400 by the server)."""


class Tokenizer:
    """Common interface; see ByteTokenizer and HFTokenizer."""

    eos_token_id: int | None = None
    bos_token_id: int | None = None
    vocab_size: int = 0
    eos_token_ids: frozenset[int] = frozenset()  # all ids that end generation (Llama 3 has several)
    chat_template: str | None = SIMPLE_TEMPLATE
    chat_template_source: str = "the simple built-in template (role: content lines)"

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def token_text(self, token_id: int) -> str:
        return ""

    def apply_chat_template(self, messages: list[dict]) -> str:
        import jinja2

        if self.chat_template is None:
            raise NoChatTemplate(NO_TEMPLATE_MESSAGE)
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
    """A `tokenizers.Tokenizer` (a checkpoint's tokenizer.json or one built from GGUF metadata) with the
    special tokens of its tokenizer config (no network, no transformers)."""

    def __init__(self, tok: Any, tok_config: dict[str, Any], model_config: dict[str, Any]) -> None:
        self._tok = tok
        self.vocab_size = max(
            self._tok.get_vocab_size(with_added_tokens=True), model_config.get("vocab_size", 0)
        )
        self.bos_token_id = self._special_id(tok_config.get("bos_token"), model_config.get("bos_token_id"))
        eos_cfg = model_config.get("eos_token_id")
        eos_list = eos_cfg if isinstance(eos_cfg, list) else [eos_cfg] if eos_cfg is not None else []
        self.eos_token_id = self._special_id(tok_config.get("eos_token"), eos_list[0] if eos_list else None)
        self.eos_token_ids = frozenset(i for i in [self.eos_token_id, *eos_list] if i is not None)
        self.chat_template = None
        self.chat_template_source = "none"

    @classmethod
    def from_dir(cls, model_dir: Path, model_config: dict[str, Any]) -> HFTokenizer:
        from tokenizers import Tokenizer as RustTokenizer

        path = model_dir / "tokenizer.json"
        try:
            tok = RustTokenizer.from_file(str(path))
        except Exception as exc:  # the library raises a bare Exception on malformed files
            raise ConfigError(
                f"{path}: cannot be read by the tokenizers library ({exc}); fix or remove it"
            ) from exc
        return cls(tok, _read_json(model_dir / "tokenizer_config.json"), model_config)

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
    """Byte-level for the presets or a checkpoint without tokenizer.json, else the checkpoint's own;
    the chat template is the checkpoint's (see the module docstring), None when it has none."""
    if model_dir is None:
        return ByteTokenizer()
    tok: Tokenizer = (
        HFTokenizer.from_dir(model_dir, model_config)
        if (model_dir / "tokenizer.json").exists()
        else ByteTokenizer()
    )
    tok.chat_template, tok.chat_template_source = checkpoint_chat_template(model_dir)
    return tok


def checkpoint_chat_template(model_dir: Path) -> tuple[str | None, str]:
    """(template, where it came from) of a checkpoint directory; (None, "none") without one."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(), str(jinja)
    config_path = model_dir / "tokenizer_config.json"
    template = _read_json(config_path).get("chat_template")
    if isinstance(template, str):
        return template, f"{config_path} (chat_template)"
    if isinstance(template, list):  # [{"name": "default", "template": ...}, ...] as transformers allows
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        if isinstance(named.get("default"), str):
            return named["default"], f"{config_path} (chat_template 'default')"
    return None, "none"


def read_chat_template_flag(value: str) -> str:
    """--chat-template: a file path or, as vLLM allows, the template text itself."""
    path = Path(value)
    if path.is_file():
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--chat-template {value}: cannot be read ({exc})") from exc
    if any(c in value for c in "{}\n"):
        return value
    raise ConfigError(
        f"--chat-template {value}: no such file; give a jinja template file (or the template text itself)"
    )

"""The privacy-safe prompt profile that both the capture log and drift compute.

One function, `prompt_profile`, turns prompt text into a few scalar features and a
fixed-size signed feature-hashing sketch of its word tokens. It works on text, not on
model token ids, so a gateway log of any server yields the same profile as the
reference server's capture. The sketch is lossy (64 buckets, signed, L2-normalised):
it supports distribution comparisons but does not allow the prompt to be recovered.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

SKETCH_DIM = 64
_WORD = re.compile(r"\w+", re.UNICODE)

# Letter scripts tracked in `script_mix` (fractions of letters; they sum to 1 when any letter exists).
SCRIPTS = ("latin", "cyrillic", "greek", "arabic", "hebrew", "devanagari", "cjk", "other")
_RANGES = (
    (0x0041, 0x024F, "latin"),
    (0x1E00, 0x1EFF, "latin"),
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"),
    (0x0750, 0x077F, "arabic"),
    (0x0900, 0x097F, "devanagari"),
    (0x1100, 0x11FF, "cjk"),
    (0x3040, 0x30FF, "cjk"),
    (0x3400, 0x4DBF, "cjk"),
    (0x4E00, 0x9FFF, "cjk"),
    (0xAC00, 0xD7AF, "cjk"),
)


def _script(ch: str) -> str:
    cp = ord(ch)
    for lo, hi, name in _RANGES:
        if lo <= cp <= hi:
            return name
    return "other"


def _bucket(token: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def prompt_sketch(text: str, dim: int = SKETCH_DIM) -> list[float]:
    """Signed hashed bag of lower-cased word tokens, L2-normalised; all zeros for empty text."""
    vec = [0.0] * dim
    for token in _WORD.findall(text.lower()):
        idx, sign = _bucket(token, dim)
        vec[idx] += sign
    norm = sum(v * v for v in vec) ** 0.5
    if norm == 0.0:
        return vec
    return [round(v / norm, 4) for v in vec]


def fingerprint(text: str | None) -> str | None:
    """Short stable fingerprint (16 hex chars of BLAKE2b) of a text, None for no text."""
    if text is None:
        return None
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def text_of_messages(messages: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """Concatenated text of chat messages and the system prompt (None when absent).

    Content may be a string or OpenAI's list of parts; only `text` parts count.
    """
    texts: list[str] = []
    system: str | None = None
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        content = "" if content is None else str(content)
        if msg.get("role") == "system" and system is None:
            system = content
        texts.append(content)
    return "\n".join(texts), system


def prompt_profile(text: str, system_prompt: str | None = None, dim: int = SKETCH_DIM) -> dict[str, Any]:
    """Features of a prompt that are safe to log: no raw text survives.

    Returns `chars`, `words`, `script_mix` (fraction of letters per script),
    `non_text_share` (share of characters that are symbols, control or unassigned:
    not letters, digits, marks, punctuation or whitespace), `system_fingerprint`, `sketch`.
    """
    counts = dict.fromkeys(SCRIPTS, 0)
    letters = 0
    non_text = 0
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "L":
            letters += 1
            counts[_script(ch)] += 1
        elif cat[0] in "NMPZ" or ch in "\n\r\t":
            continue
        else:
            non_text += 1
    mix = {k: round(v / letters, 4) for k, v in counts.items()} if letters else dict.fromkeys(SCRIPTS, 0.0)
    return {
        "chars": len(text),
        "words": len(_WORD.findall(text)),
        "script_mix": mix,
        "non_text_share": round(non_text / len(text), 4) if text else 0.0,
        "system_fingerprint": fingerprint(system_prompt),
        "sketch": prompt_sketch(text, dim),
    }

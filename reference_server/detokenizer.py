"""Incremental, UTF-8-safe detokenization with stop strings.

Decoding token by token can split a multi-byte character (or a merged word piece) across tokens, so the
text of new tokens is decoded together with a few previous ones and only released once it no longer ends
in a replacement character. Text is also held back while the tail could still grow into a stop string;
a stop string found ends the request and neither it nor anything after it is returned.
"""

from __future__ import annotations

from reference_server.tokenizer import Tokenizer


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Tokenizer, stop: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.hold = max((len(s) for s in stop), default=1) - 1
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0
        self.text = ""  # all text decoded so far (truncated at a stop string)
        self.emitted = 0  # characters of self.text already returned

    def add(self, token_ids: list[int], check_stop: bool) -> bool:
        """Feed new tokens; return True when a stop string was found."""
        self.ids.extend(token_ids)
        prefix = self.tokenizer.decode(self.ids[self.prefix_offset : self.read_offset])
        full = self.tokenizer.decode(self.ids[self.prefix_offset :])
        if len(full) <= len(prefix) or full.endswith("\ufffd"):
            return False
        start = max(0, len(self.text) - self.hold)
        self.text += full[len(prefix) :]
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        if not (check_stop and self.stop):
            return False
        cut = min((i for i in (self.text.find(s, start) for s in self.stop) if i >= 0), default=-1)
        if cut < 0:
            return False
        self.text = self.text[:cut]
        return True

    def flush(self) -> None:
        """At the end, release bytes still waiting for the rest of a character (as replacement chars)."""
        if self.read_offset < len(self.ids):
            prefix = self.tokenizer.decode(self.ids[self.prefix_offset : self.read_offset])
            self.text += self.tokenizer.decode(self.ids[self.prefix_offset :])[len(prefix) :]
            self.prefix_offset = self.read_offset = len(self.ids)

    def take(self, final: bool) -> str:
        """Text not returned yet; while running, keep back a tail that may start a stop string."""
        end = len(self.text) if final or not self.stop else max(self.emitted, len(self.text) - self.hold)
        out = self.text[self.emitted : end]
        self.emitted = end
        return out

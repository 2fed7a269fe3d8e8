"""Errors raised by the reference engine."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad engine configuration detected at start-up.

    The message always names what to change: the flag, the file or the value.
    """

"""The one duration grammar of every Tollgate flag and file field (`--duration`, `--window`, `for:`, ...).

    90  1.5          plain seconds
    500ms 30s 5m 2h 1d 1w 1y   a number with a unit (ms, s, m, h, d, w, y as Prometheus: 365d; any case)
    1h30m  1m30s  1h 30m   several of them, added up
    1m30               minutes then bare seconds (as `tollgate demo --duration` read it); 1h30 is refused

Whitespace around the value and between its parts is allowed (`90 s`). This is the union of what the
components' own parsers accepted before they were replaced by this module (w and y: Prometheus ranges
that `tollgate canary --rate-window` passed through verbatim), so nothing that worked stops working.
`format_duration` writes seconds back in Prometheus' (Go's) duration syntax.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0}
EXAMPLES = "90 (seconds), 1.5, 500ms, 30s, 5m, 2h, 1d or 1h30m"  # w (week) and y (365d) work too

_NUMBER = r"\d+(?:\.\d+)?"
_UNIT = "ms|s|m|h|d|w|y"
_PART = re.compile(rf"({_NUMBER})\s*({_UNIT})", re.IGNORECASE)
_PLAIN = re.compile(rf"\s*({_NUMBER})\s*")
_COMPOUND = re.compile(rf"\s*(?:{_NUMBER}\s*(?:{_UNIT})\s*)+", re.IGNORECASE)
_MINUTES_THEN_SECONDS = re.compile(rf"(.*\d\s*m)\s*({_NUMBER})\s*", re.IGNORECASE)


class DurationError(ValueError):
    """A value that is not a duration; the message says where, what, and the forms that work."""


def parse_duration(value: str | int | float, where: str = "duration") -> float:
    """Seconds of a duration in the grammar above; a number (from YAML or JSON) is seconds.

    `where` names the flag or field in the error, e.g. "--window" or "for"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"{where}: {value!r} must be a finite number of seconds, 0 or more")
        return float(value)
    text = str(value)
    plain = _PLAIN.fullmatch(text)
    if plain:
        return float(plain.group(1))
    if _COMPOUND.fullmatch(text):
        return sum(float(n) * UNITS[u.lower()] for n, u in _PART.findall(text))
    clock = _MINUTES_THEN_SECONDS.fullmatch(text)
    if clock and _COMPOUND.fullmatch(clock.group(1)):
        return parse_duration(clock.group(1), where) + float(clock.group(2))
    raise DurationError(f"{where}: {text!r} is not a duration; write e.g. {EXAMPLES}")


def duration_type(
    minimum: float = 0.0, maximum: float | None = None, *, positive: bool = False
) -> Callable[[str], float]:
    """An argparse `type=` for a duration flag, optionally bounded (argparse names the flag)."""

    def duration(text: str) -> float:
        try:
            seconds = parse_duration(text)
        except DurationError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[1]) from None
        if positive and seconds <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0s; write e.g. 30s or 5m")
        if seconds < minimum or (maximum is not None and seconds > maximum):
            upper = f" to {format_duration(maximum)}" if maximum is not None else " or more"
            raise argparse.ArgumentTypeError(
                f"{text!r} ({format_duration(seconds)}) is out of range: use {format_duration(minimum)}{upper}"
            )
        return seconds

    return duration


duration_arg = duration_type()


def format_duration(seconds: float) -> str:
    """Seconds in Prometheus' duration syntax, exact, in the largest unit that divides them: 1h, 90m, 45s, 250ms."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"

"""Ollama's duration syntax for `keep_alive` and friends, in seconds.

A JSON number is seconds; a string is a Go duration (`"5m"`, `"1h30m"`, `"-1s"`);
a unitless string other than `"0"` is an error (environment variables also accept
bare integers). Any negative value means "forever", returned as `math.inf`.
"""

from __future__ import annotations

import math
import re

from pasture.errors import BadRequestError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string such as `1h2m3.5s` (sign allowed)."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if not match:
            raise BadRequestError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise BadRequestError(f'time: invalid duration "{text}"')
    return sign * total


def parse_keep_alive(value: float | int | str | None, *, bare_int_seconds: bool = False) -> float:
    """Seconds to keep a model loaded; `math.inf` for any negative value."""
    if value is None:
        raise BadRequestError("keep_alive is missing")
    if isinstance(value, bool):
        raise BadRequestError("keep_alive must be a number or a duration string")
    if isinstance(value, int | float):
        seconds = float(value)
    elif bare_int_seconds and re.fullmatch(r"[+-]?\d+", value.strip()):
        seconds = float(value.strip())
    else:
        seconds = parse_go_duration(value)
    if math.isnan(seconds):
        raise BadRequestError("keep_alive must be a number")
    return math.inf if seconds < 0 else seconds

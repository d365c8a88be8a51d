"""Durations as written in stack files and Consul payloads: `10s`, `1m30s`, `250ms`."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Return seconds for a number (already seconds) or a Go-style duration string.

    Raises ``ValueError`` with a readable message for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return parse_duration(number)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 10s, 1m30s)")
    return total


def format_duration(seconds: float) -> str:
    """Render seconds the way Consul does (``10s``, ``1m30s``, ``250ms``)."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60)
    if minutes and secs:
        return f"{int(minutes)}m{secs:g}s"
    if minutes:
        return f"{int(minutes)}m"
    return f"{secs:g}s"

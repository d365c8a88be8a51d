"""Compact JSON text on the request path, without building an encoder for every value, and
JSON read from bytes without ``json.loads``'s encoding detection.

``json.JSONEncoder.encode`` makes a new C encoder each time it is called: for the small values
a request writes (a header map, a null, one string), that costs more than the encoding. This
module keeps one C encoder for the process: :func:`dumps` writes exactly what
``json.dumps(value, separators=(",", ":"))`` writes (ASCII only, ``NaN``/``Infinity`` allowed),
and :func:`text` is the encoding of one string. Values must not contain themselves (the one
encoder does no cycle check; what the gateway writes never does).

:func:`loads` reads what a function answers: ``json.loads(data)`` for every input, in fewer
steps when the bytes are UTF-8 holding one JSON value with nothing around it (the usual case:
``json.loads`` first guesses the encoding of bytes and skips whitespace in Python). Anything
else — a byte-order mark, UTF-16 or UTF-32, whitespace or more text after the value, malformed
input — is handed to ``json.loads`` itself, which answers or raises as it always does.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

text: Callable[[str], str] = encode_basestring_ascii
"""A string as JSON (``json.dumps(value)`` of a ``str``)."""


def _default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_make: Any = getattr(json.encoder, "c_make_encoder", None)  # the C accelerator, if built
_chunks = (
    _make(None, _default, encode_basestring_ascii, None, ":", ",", False, False, True)
    if _make is not None
    else None
)
_fallback = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"))``."""
    if _chunks is None:  # an interpreter without the C accelerator
        return _fallback(value)
    return "".join(_chunks(value, 0))


_make_scanner: Any = json.scanner.make_scanner  # typeshed types it as the scanner it makes
_scan: Any = _make_scanner(json.JSONDecoder())  # json.loads's own defaults


def loads(data: bytes) -> Any:
    """``json.loads(data)`` (see the module docstring)."""
    try:
        text = data.decode()
        value, end = _scan(text, 0)
    except (UnicodeDecodeError, StopIteration, ValueError):
        return json.loads(data)
    if end != len(text):
        return json.loads(data)
    return value

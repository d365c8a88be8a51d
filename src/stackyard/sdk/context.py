"""The request context the SDK keeps in contextvars: the correlation id/counter and, when the
OpenTelemetry API is not installed, the trace context a request arrived with (passed on as is).

Header values are read from any of the shapes servers hand them over in (see :func:`carrier`):
a mapping (``dict``, ``http.server``'s ``email.message.Message``, Starlette's ``Headers``) or
ASGI-style ``(name, value)`` pairs of bytes or str. Names are matched case-insensitively.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

CORRELATION_ID = "x-correlation-id"
CORRELATION_COUNTER = "x-correlation-counter"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_VALID_ID = re.compile(r"[\w.:/-]{1,128}")  # what the gateway and the log store accept
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


class Correlation(NamedTuple):
    """A request's correlation id and the counter it arrived with (the number of hops so far)."""

    id: str
    counter: int


class Passthrough(NamedTuple):
    """A W3C context kept only to be forwarded (no OpenTelemetry API installed)."""

    trace_id: str
    parent_id: str
    flags: str
    tracestate: str | None


correlation_var: ContextVar[Correlation | None] = ContextVar("stackyard_correlation", default=None)
passthrough_var: ContextVar[Passthrough | None] = ContextVar("stackyard_passthrough", default=None)


def carrier(headers: Any) -> dict[str, str]:
    """``headers`` (mapping, ``email.message.Message`` or pairs) as a lower-case-keyed dict.
    Repeated headers are joined with ``,`` (as HTTP allows for list-valued fields)."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        items = headers.items()
    else:
        items = headers
    out: dict[str, str] = {}
    for name, value in items:
        key = (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


def correlation_from(headers: Mapping[str, str]) -> Correlation:
    """The correlation of a request with these (lower-case) headers; a new id when it has none
    (or an invalid one); an absent or invalid counter counts as 0."""
    raw = headers.get(CORRELATION_ID, "").strip()
    counter_text = headers.get(CORRELATION_COUNTER, "").strip()
    counter = int(counter_text) if counter_text.isdigit() and len(counter_text) < 16 else 0
    return Correlation(raw if _VALID_ID.fullmatch(raw) else new_correlation_id(), counter)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def correlation_headers() -> dict[str, str]:
    """``x-correlation-id`` and ``x-correlation-counter`` (+1) of the current request; empty
    outside a request."""
    found = correlation_var.get()
    if found is None:
        return {}
    return {CORRELATION_ID: found.id, CORRELATION_COUNTER: str(found.counter + 1)}


def current_correlation_id() -> str | None:
    """The correlation id of the current request (None outside one)."""
    found = correlation_var.get()
    return found.id if found is not None else None


def parse_passthrough(headers: Mapping[str, str]) -> Passthrough | None:
    """The ``traceparent`` (version 00) of lower-case headers, or None when absent/invalid."""
    match = _TRACEPARENT.fullmatch(headers.get(TRACEPARENT, "").strip())
    if match is None or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return Passthrough(match.group(1), match.group(2), match.group(3), headers.get(TRACESTATE))

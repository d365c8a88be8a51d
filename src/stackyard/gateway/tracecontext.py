"""Trace context on the wire: W3C ``traceparent``/``tracestate``, B3 single and multi, X-Ray ids.

Parsing never raises: a malformed header is ignored (the request then starts a new trace), as
W3C Trace Context asks. What a request arrives with is an :class:`Incoming` (``trace_id`` and
``parent_id`` None when no valid context came; ``sampled`` None when the caller made no
sampling decision). Ids are lowercase hex: trace ids always 32 digits (a 64-bit B3 trace id is
left-padded with zeros, as OpenTelemetry's B3 propagator does, so every hop of one trace
reports the same id), span ids 16.

- ``traceparent``: ``00-<32 hex>-<16 hex>-<2 hex flags>`` (flag bit 0 = sampled); all-zero ids,
  version ``ff``, upper-case hex and a version 00 header of any other length are invalid; a
  header of a later version is read by its first four fields (it must be at least as long as
  version 00, and what follows them must start with ``-``). We always send version 00.
- ``tracestate``: kept as the client sent it (several headers joined with ``,``) and forwarded
  only along a valid ``traceparent``.
- B3 single ``b3: {trace}-{span}[-{sampled}[-{parent}]]`` or just ``b3: {0|1|d}``; B3 multi
  ``X-B3-TraceId`` (16 or 32 hex), ``X-B3-SpanId``, ``X-B3-ParentSpanId``, ``X-B3-Sampled``
  (``1``/``0``, ``true``/``false``), ``X-B3-Flags: 1`` (debug, means sampled). Precedence:
  ``traceparent`` > ``b3`` > ``X-B3-*``.
- X-Ray (``X-Amzn-Trace-Id`` / ``Lambda-Runtime-Trace-Id`` / ``_X_AMZN_TRACE_ID``):
  ``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>``; the 32-hex trace id is the 8 + 24
  digits of ``Root``.

New ids come from a ``random.Random`` seeded from ``os.urandom`` (reseeded in forked children):
unique, fast (no ``uuid4`` per request), not secret. A new trace id is X-Ray shaped, as AWS's
X-Ray id generator for OpenTelemetry makes them: its first 8 hex digits are the Unix time in
seconds, the other 24 random. So its X-Ray form ``Root=1-<time>-<random>`` is one X-Ray accepts,
sampling (which reads the lower 64 bits) stays uniform, and the span store's trace-id index and
dependency rows grow at their end instead of at random places.
"""

from __future__ import annotations

import os
import random
import time

TRACEPARENT = b"traceparent"
TRACESTATE = b"tracestate"
B3 = b"b3"
B3_TRACE_ID = b"x-b3-traceid"
B3_SPAN_ID = b"x-b3-spanid"
B3_PARENT_SPAN_ID = b"x-b3-parentspanid"
B3_SAMPLED = b"x-b3-sampled"
B3_FLAGS = b"x-b3-flags"
TRACE_HEADERS: frozenset[bytes] = frozenset(
    {TRACEPARENT, TRACESTATE, B3, B3_TRACE_ID, B3_SPAN_ID, B3_PARENT_SPAN_ID, B3_SAMPLED, B3_FLAGS}
)
"""Request headers that carry trace context (replaced, not forwarded, when tracing is on)."""

_HEX = frozenset(b"0123456789abcdef")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_MAX_TRACESTATE = 8192

_random_bits = random.Random(os.urandom(32)).getrandbits


def _reseed() -> None:
    global _random_bits
    _random_bits = random.Random(os.urandom(32)).getrandbits


os.register_at_fork(after_in_child=_reseed)  # forked workers must not repeat each other's ids


_time = time.time


_second = -1
_second_hex = ""


def new_trace_id() -> str:
    """32 lowercase hex digits: the Unix time in seconds (8), then 24 random ones."""
    global _second, _second_hex
    now = int(_time())
    if now != _second:
        _second, _second_hex = now, f"{now & 0xFFFFFFFF:08x}"
    return _second_hex + _random_bits(96).to_bytes(12).hex()


def new_span_id() -> str:
    """16 random lowercase hex digits, never all zero."""
    return (_random_bits(64) or 1).to_bytes(8).hex()


class Incoming:
    """The trace context a request arrived with (see the module docstring)."""

    __slots__ = ("b3", "parent_id", "sampled", "trace_id", "tracestate")

    def __init__(
        self,
        trace_id: str | None = None,
        parent_id: str | None = None,
        sampled: bool | None = None,
        tracestate: bytes | None = None,
        b3: bool = False,
    ) -> None:
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.sampled = sampled
        self.tracestate = tracestate
        self.b3 = b3  # the caller spoke B3: answer it in B3 too

    def __repr__(self) -> str:
        return (
            f"Incoming({self.trace_id!r}, {self.parent_id!r}, sampled={self.sampled!r}, "
            f"tracestate={self.tracestate!r}, b3={self.b3!r})"
        )


def _hex(value: bytes, size: int) -> str | None:
    """``value`` as a str when it is ``size`` lowercase hex digits, not all zero."""
    if len(value) != size or not _HEX.issuperset(value):
        return None
    text = value.decode("ascii")
    if text == _ZERO_TRACE[:size]:
        return None
    return text


def _b3_trace_id(value: bytes) -> str | None:
    value = value.lower()
    if len(value) == 16:
        found = _hex(value, 16)
        return _ZERO_SPAN + found if found else None
    return _hex(value, 32)


SpanContext = tuple[str, str, bool]
"""A caller's span as a callee continues it: (trace id, span id, sampled); what a valid
``traceparent`` says, already parsed."""


def parse_traceparent(value: bytes) -> SpanContext | None:
    """``(trace_id, parent_id, sampled)`` of a ``traceparent`` value, or None if invalid."""
    value = value.strip(b" \t")
    if len(value) < 55 or value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-":
        return None
    version = value[:2]
    if not _HEX.issuperset(version) or version == b"ff":
        return None
    if version == b"00":
        if len(value) != 55:
            return None
    elif len(value) > 55 and value[55:56] != b"-":
        return None
    trace_id = _hex(value[3:35], 32)
    parent_id = _hex(value[36:52], 16)
    flags = value[53:55]
    if trace_id is None or parent_id is None or not _HEX.issuperset(flags):
        return None
    return trace_id, parent_id, bool(int(flags, 16) & 1)


def format_traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def _b3_sampled(value: bytes) -> bool | None:
    value = value.strip().lower()
    if value in (b"1", b"d", b"true"):
        return True
    if value in (b"0", b"false"):
        return False
    return None


def parse_b3_single(value: bytes) -> Incoming | None:
    """The context of a ``b3`` header value; None when malformed."""
    parts = value.strip().split(b"-")
    if len(parts) == 1:
        sampled = _b3_sampled(parts[0])
        return None if sampled is None else Incoming(sampled=sampled, b3=True)
    if len(parts) > 4:
        return None
    trace_id = _b3_trace_id(parts[0])
    span_id = _hex(parts[1].lower(), 16)
    if trace_id is None or span_id is None:
        return None
    sampled = None
    if len(parts) >= 3:
        sampled = _b3_sampled(parts[2])
        if sampled is None:
            return None
    if len(parts) == 4 and _hex(parts[3].lower(), 16) is None:
        return None
    return Incoming(trace_id, span_id, sampled, b3=True)


def parse_b3_multi(
    trace: bytes | None, span: bytes | None, sampled: bytes | None, flags: bytes | None
) -> Incoming | None:
    """The context of the ``X-B3-*`` headers; None when absent or malformed."""
    decision = True if flags is not None and flags.strip() == b"1" else None
    if decision is None and sampled is not None:
        decision = _b3_sampled(sampled)
    if trace is None or span is None:
        return None if decision is None else Incoming(sampled=decision, b3=True)
    trace_id = _b3_trace_id(trace.strip())
    span_id = _hex(span.strip().lower(), 16)
    if trace_id is None or span_id is None:
        return None if decision is None else Incoming(sampled=decision, b3=True)
    return Incoming(trace_id, span_id, decision, b3=True)


def format_b3(trace_id: str, span_id: str, sampled: bool, parent_id: str | None) -> str:
    """A ``b3`` single-header value."""
    out = f"{trace_id}-{span_id}-{'1' if sampled else '0'}"
    return f"{out}-{parent_id}" if parent_id else out


def extract(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> Incoming:
    """The trace context of ASGI request headers (lower-case names)."""
    traceparent: bytes | None = None
    states: list[bytes] = []
    b3: bytes | None = None
    multi: dict[bytes, bytes] | None = None
    for name, value in headers:
        if name == TRACEPARENT:
            traceparent = value if traceparent is None else b""  # two of them: invalid
        elif name == TRACESTATE:
            states.append(value)
        elif name == B3:
            b3 = value
        elif name.startswith(b"x-b3-"):
            if multi is None:
                multi = {}
            multi[name] = value
    return from_headers(traceparent, states, b3, multi)


def from_headers(
    traceparent: bytes | None,
    states: list[bytes],
    b3: bytes | None,
    multi: dict[bytes, bytes] | None,
) -> Incoming:
    """The context given the raw trace headers (see :func:`extract`)."""
    if traceparent is not None:
        parsed = parse_traceparent(traceparent)
        if parsed is not None:
            state = b",".join(states).strip() if states else None
            if state is not None and (not state or len(state) > _MAX_TRACESTATE):
                state = None
            return Incoming(parsed[0], parsed[1], parsed[2], state)
    if b3 is not None:
        found = parse_b3_single(b3)
        if found is not None:
            return found
    if multi:
        found = parse_b3_multi(
            multi.get(B3_TRACE_ID),
            multi.get(B3_SPAN_ID),
            multi.get(B3_SAMPLED),
            multi.get(B3_FLAGS),
        )
        if found is not None:
            return found
    return Incoming()


def parse_xray(value: str) -> tuple[str, str | None, bool | None] | None:
    """``(trace_id, parent_id, sampled)`` of an X-Ray trace header; None when it has no Root."""
    trace_id: str | None = None
    parent_id: str | None = None
    sampled: bool | None = None
    for part in value.split(";"):
        key, _, item = part.strip().partition("=")
        key = key.strip().lower()
        item = item.strip()
        if key == "root":
            pieces = item.split("-")
            if len(pieces) != 3 or pieces[0] != "1":
                return None
            trace_id = _hex((pieces[1] + pieces[2]).encode("latin-1").lower(), 32)
            if len(pieces[1]) != 8 or trace_id is None:
                return None
        elif key == "parent":
            parent_id = _hex(item.encode("latin-1").lower(), 16)
        elif key == "sampled":
            sampled = True if item == "1" else False if item == "0" else None
    if trace_id is None:
        return None
    return trace_id, parent_id, sampled


def format_xray(trace_id: str, parent_id: str, sampled: bool) -> str:
    """``Root=1-<8>-<24>;Parent=<16>;Sampled=<0|1>`` for a 32-hex trace id."""
    return f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={parent_id};Sampled={int(sampled)}"

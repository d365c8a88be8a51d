"""Header rewriting between client and upstream, both ways, in one pass each.

Towards the upstream: hop-by-hop headers (Connection, Keep-Alive, Proxy-*, TE, Trailer,
Transfer-Encoding, Upgrade, and every header the Connection header lists) and ``Expect`` are
dropped; ``Host`` is not forwarded (the upstream gets its own ``host:port``, the client's host
goes in ``X-Forwarded-Host``); ``X-Forwarded-For`` gets the client address appended,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are set from the request; ``x-correlation-id``
and ``x-correlation-counter`` are replaced by the values the correlation step chose; with
tracing on, the trace context headers are replaced by the proxy's (see :mod:`.tracing`).

Towards the client: the same hop-by-hop set is dropped from the upstream's response headers;
the rest pass unchanged (the upstream client lower-cases names, as ASGI wants), except
``x-correlation-id``, which the correlation step sets.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..asgi import Scope
from .tracecontext import TRACE_HEADERS

# codes for the request headers that need handling (anything else is forwarded as is)
_DROP, _HOST, _XFF, _CONNECTION, _CONTENT_LENGTH, _TRANSFER_ENCODING = range(6)
_REQUEST_SPECIAL: dict[bytes, int] = {
    b"host": _HOST,
    b"x-forwarded-for": _XFF,
    b"connection": _CONNECTION,
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"keep-alive": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
    b"upgrade": _DROP,
    b"expect": _DROP,
    b"x-forwarded-proto": _DROP,
    b"x-forwarded-host": _DROP,
    b"x-correlation-id": _DROP,
    b"x-correlation-counter": _DROP,
}
# with tracing on, the trace context headers are replaced by the gateway's own (see .tracing)
_REQUEST_SPECIAL_TRACED: dict[bytes, int] = {
    **_REQUEST_SPECIAL,
    **dict.fromkeys(TRACE_HEADERS, _DROP),
}
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# the correlation step sets x-correlation-id on the response itself
_RESPONSE_DROP = HOP_BY_HOP | {b"x-correlation-id"}
# the usual Connection values name no other header: nothing more to drop
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})


class RequestHead:
    """The upstream request's header lines plus what the body reader needs to know.

    ``fields`` is the header block as it goes on the wire (``name: value`` lines, each ending
    in CRLF, without ``Host`` and without the blank line that ends the head).
    """

    __slots__ = ("chunked", "content_length", "fields")

    def __init__(self, fields: bytes, content_length: int | None, chunked: bool) -> None:
        self.fields = fields
        self.content_length = content_length
        self.chunked = chunked


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


_XFP = {"http": (b"x-forwarded-proto", b"http"), "https": (b"x-forwarded-proto", b"https")}
_CORRELATION_ID = b"x-correlation-id"
_CORRELATION_COUNTER = b"x-correlation-counter"


def upstream_request_head(
    scope: Scope, correlation_id: str | bytes, counter: int, *, traced: bool = False
) -> RequestHead:
    """Rewrites the client's request headers for the upstream (see the module docstring).

    ``traced``: the trace context headers (``traceparent``, ``tracestate``, ``b3``,
    ``x-b3-*``) are left out too; the proxy adds its own per try."""
    out: list[tuple[bytes, bytes]] = []
    host = b""
    xff = b""
    content_length: int | None = None
    chunked = False
    listed: set[bytes] | None = None
    special = _REQUEST_SPECIAL_TRACED if traced else _REQUEST_SPECIAL
    for pair in scope["headers"]:
        code = special.get(pair[0])
        if code is None:
            if not pair[0].startswith(b"proxy-"):
                out.append(pair)
            continue
        value = pair[1]
        if code == _CONTENT_LENGTH:
            try:
                content_length = int(value)
            except ValueError:
                content_length = None
            if content_length is not None and content_length >= 0:
                out.append((b"content-length", b"%d" % content_length))
            else:
                content_length = None
        elif code == _HOST:
            host = value
        elif code == _XFF:
            xff = value if not xff else xff + b", " + value
        elif code == _CONNECTION:
            listed = _tokens(value) if listed is None else listed | _tokens(value)
        elif code == _TRANSFER_ENCODING:
            chunked = True
    if listed:
        out = [p for p in out if p[0] not in listed]
    if chunked:
        # Transfer-Encoding wins over Content-Length (RFC 9112 6.3); the body is re-framed.
        content_length = None
        out = [p for p in out if p[0] != b"content-length"]
    client = scope.get("client")
    if client:
        address = str(client[0]).encode("latin-1")
        xff = xff + b", " + address if xff else address
    if xff:
        out.append((b"x-forwarded-for", xff))
    scheme = scope.get("scheme") or "http"
    out.append(_XFP.get(scheme) or (b"x-forwarded-proto", scheme.encode("latin-1")))
    if host:
        out.append((b"x-forwarded-host", host))
    if isinstance(correlation_id, str):
        correlation_id = correlation_id.encode("latin-1")
    out.append((_CORRELATION_ID, correlation_id))
    out.append((_CORRELATION_COUNTER, b"%d" % counter))
    fields = b"\r\n".join(map(b": ".join, out)) + b"\r\n"
    return RequestHead(fields, content_length, chunked)


def client_response_headers(
    raw: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers (names already lower-cased) minus hop-by-hop ones."""
    out: list[tuple[bytes, bytes]] = []
    listed: set[bytes] | None = None
    hop = _RESPONSE_DROP
    for pair in raw:
        name = pair[0]
        if name in hop or name.startswith(b"proxy-"):
            if name == b"connection":
                value = pair[1]
                if value.lower() not in _PLAIN_CONNECTION:
                    listed = _tokens(value) if listed is None else listed | _tokens(value)
            continue
        out.append(pair)
    if listed:
        out = [(n, v) for n, v in out if n not in listed]
    return out

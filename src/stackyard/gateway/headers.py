"""Header rewriting between client and upstream, both ways, in one pass each.

Towards the upstream: hop-by-hop headers (Connection, Keep-Alive, Proxy-*, TE, Trailer,
Transfer-Encoding, Upgrade, and every header the Connection header lists) and ``Expect`` are
dropped; ``Host`` is not forwarded (the upstream gets its own ``host:port``, the client's host
goes in ``X-Forwarded-Host``); ``X-Forwarded-For`` gets the client address appended,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are set from the request; ``x-correlation-id``
and ``x-correlation-counter`` are replaced by the values the correlation step chose.

Towards the client: the same hop-by-hop set is dropped from the upstream's response headers;
the rest pass unchanged (names lower-cased, as ASGI wants), except ``x-correlation-id``,
which the correlation step sets.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..asgi import Scope

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
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# the correlation step sets x-correlation-id on the response itself
_RESPONSE_DROP = HOP_BY_HOP | {b"x-correlation-id"}


class RequestHead:
    """The upstream request headers plus what the body reader needs to know."""

    __slots__ = ("chunked", "content_length", "headers")

    def __init__(
        self, headers: list[tuple[str, str]], content_length: int | None, chunked: bool
    ) -> None:
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def upstream_request_head(scope: Scope, correlation_id: str, counter: int) -> RequestHead:
    """Rewrites the client's request headers for the upstream (see the module docstring)."""
    out: list[tuple[str, str]] = []
    host = ""
    xff = ""
    content_length: int | None = None
    chunked = False
    listed: set[bytes] | None = None
    special = _REQUEST_SPECIAL
    for name, value in scope["headers"]:
        code = special.get(name)
        if code is None:
            if not name.startswith(b"proxy-"):
                out.append((name.decode("latin-1"), value.decode("latin-1")))
            continue
        if code == _CONTENT_LENGTH:
            try:
                content_length = int(value)
            except ValueError:
                content_length = None
            if content_length is not None and content_length >= 0:
                out.append(("content-length", str(content_length)))
        elif code == _HOST:
            host = value.decode("latin-1")
        elif code == _XFF:
            xff = value.decode("latin-1") if not xff else f"{xff}, {value.decode('latin-1')}"
        elif code == _CONNECTION:
            listed = _tokens(value) if listed is None else listed | _tokens(value)
        elif code == _TRANSFER_ENCODING:
            chunked = True
    if listed:
        drop = {t.decode("latin-1") for t in listed}
        out = [(n, v) for n, v in out if n.lower() not in drop]
    if chunked:
        # Transfer-Encoding wins over Content-Length (RFC 9112 6.3); the body is re-framed.
        content_length = None
        out = [(n, v) for n, v in out if n != "content-length"]
    client = scope.get("client")
    if client:
        xff = f"{xff}, {client[0]}" if xff else str(client[0])
    if xff:
        out.append(("x-forwarded-for", xff))
    out.append(("x-forwarded-proto", scope.get("scheme") or "http"))
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("x-correlation-id", correlation_id))
    out.append(("x-correlation-counter", str(counter)))
    return RequestHead(out, content_length, chunked)


def client_response_headers(
    raw: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones, names lower-cased."""
    out: list[tuple[bytes, bytes]] = []
    listed: set[bytes] | None = None
    hop = _RESPONSE_DROP
    for name, value in raw:
        lname = name.lower()
        if lname in hop or lname.startswith(b"proxy-"):
            if lname == b"connection":
                listed = _tokens(value) if listed is None else listed | _tokens(value)
            continue
        out.append((lname, value))
    if listed:
        out = [(n, v) for n, v in out if n not in listed]
    return out

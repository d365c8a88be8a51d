"""The lean HTTP/1.1 upstream client (h1 + pool) against raw asyncio servers with odd framing."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from stackyard.gateway import PoolSettings, RouteSpec, UpstreamClient, UpstreamTimeout
from stackyard.gateway.errors import UpstreamUnavailable
from stackyard.gateway.pool import EndpointPool
from stackyard.registry.models import Endpoint

from .conftest import make_table

Conn = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A TCP server on loopback running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Conn) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the test is over or the client went away
        finally:
            writer.close()

    async def read_head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Conn], Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def factory(handler: Conn) -> RawServer:
        server = RawServer(handler)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream = UpstreamClient(
        PoolSettings(max_idle=4, keepalive_timeout=30.0, read_buffer=64 * 1024)
    )
    await upstream.start()
    yield upstream
    await upstream.stop()


async def get(pool: EndpointPool, method: bytes = b"GET", wait: float = 5.0) -> tuple[int, bytes]:
    conn = await pool.request(method + b" /x", b"", None, False, wait, method == b"HEAD")
    try:
        return conn.status, await conn.read_all(wait)
    finally:
        conn.release()


def answer(body: bytes, *extra: bytes) -> bytes:
    lines = [b"HTTP/1.1 200 OK", b"content-length: %d" % len(body), *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def test_keep_alive_reuses_one_connection(raw, client):
    async def handler(reader, writer):
        while True:
            await server.read_head(reader)
            writer.write(answer(b"hello"))

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    for _ in range(5):
        assert await get(pool) == (200, b"hello")
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /x HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n" % server.port)


async def test_chunked_response_in_pieces(raw, client):
    async def handler(reader, writer):
        while True:
            await server.read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n")
            for piece in (b"5\r\nhel", b"lo\r\n", b"7\r\n, wor", b"ld\r\n0\r\n", b"\r\n"):
                await writer.drain()
                await asyncio.sleep(0.01)
                writer.write(piece)

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    for _ in range(2):
        conn = await pool.request(b"GET /c", b"", None, False, 5.0, False)
        assert conn.status == 200
        assert (b"x-a", b"1") in conn.headers and (b"transfer-encoding", b"chunked") in conn.headers
        chunks = []
        while chunk := await conn.read_chunk(5.0):
            chunks.append(chunk)
        conn.release()
        assert b"".join(chunks) == b"hello, world"
    assert server.connections == 1  # reused after a chunked body


async def test_read_until_close_response(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"part two")
        await writer.drain()
        writer.close()

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    assert await get(pool) == (200, b"part one, part two")
    assert await get(pool) == (200, b"part one, part two")
    assert server.connections == 2  # never reused


async def test_connection_close_is_not_reused(raw, client):
    async def handler(reader, writer):
        while True:  # keeps the socket open: the client must not reuse it anyway
            await server.read_head(reader)
            writer.write(answer(b"bye", b"Connection: close"))

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    for _ in range(3):
        assert await get(pool) == (200, b"bye")
    assert server.connections == 3
    assert not pool.idle


async def test_http10_without_keep_alive_is_not_reused(raw, client):
    async def handler(reader, writer):
        while True:
            await server.read_head(reader)
            writer.write(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok")

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    for _ in range(2):
        assert await get(pool) == (200, b"ok")
    assert server.connections == 2


async def test_upstream_closes_idle_connection_between_requests(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(answer(b"once"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # idle close, like a keep-alive timeout on the upstream

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    assert await get(pool) == (200, b"once")
    await asyncio.sleep(0.2)
    assert not pool.idle  # the loop saw the close and dropped it from the stack
    assert await get(pool) == (200, b"once")
    assert server.connections == 2


async def test_stale_connection_is_retried_once_on_a_fresh_one(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(answer(b"first"))
        await server.read_head(reader)
        # the keep-alive race: the request arrived as the upstream gave the connection up
        writer.transport.abort()

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    for _ in range(4):
        assert await get(pool) == (200, b"first")
    assert server.connections == 4  # every second request on a connection was re-sent


async def test_stale_connection_through_gateway_with_no_retries(raw, serve):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(answer(b"first"))
        await server.read_head(reader)
        writer.transport.abort()

    server = await raw(handler)
    served = await serve()
    ep = Endpoint("raw", "127.0.0.1", server.port)
    served.gateway.update(make_table(1, [RouteSpec("/{p+}", "svc", retries=0)], {"svc": [ep]}))
    for _ in range(6):
        status, _, body = await served.request("POST", "/x", data=b"payload")
        assert (status, body) == (200, b"first")


async def test_fresh_connection_dropped_before_answer_is_unavailable(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.transport.abort()

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    with pytest.raises(UpstreamUnavailable):
        await get(pool)
    assert server.connections == 1  # a fresh connection is not re-sent by the pool


async def test_head_204_304_have_no_body_and_keep_the_connection(raw, client):
    async def handler(reader, writer):
        while True:
            head = await server.read_head(reader)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            elif head.startswith(b"GET /204"):
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif head.startswith(b"GET /304"):
                writer.write(b"HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n")
            else:
                writer.write(answer(b"after"))

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    for start, status in ((b"HEAD /x", 200), (b"GET /204", 204), (b"GET /304", 304)):
        conn = await pool.request(start, b"", None, False, 2.0, start.startswith(b"HEAD"))
        assert conn.status == status
        assert await conn.read_all(2.0) == b""
        conn.release()
        assert await get(pool) == (200, b"after")
    assert server.connections == 1


async def test_informational_answer_is_skipped(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n")
        writer.write(answer(b"real", b"x-real: yes"))
        await asyncio.sleep(1)

    server = await raw(handler)
    conn = await client.pool("127.0.0.1", server.port).request(b"GET /", b"", None, False, 2, False)
    assert conn.status == 200 and conn.headers[-1] == (b"x-real", b"yes")
    assert all(name != b"link" for name, _ in conn.headers)
    assert await conn.read_all(2) == b"real"
    conn.release()


async def test_slow_consumer_pauses_reading(raw, client):
    block = b"x" * 65536
    total = 200 * len(block)  # 12.5 MiB, far beyond the 64 KiB high-water mark
    sent = 0

    async def handler(reader, writer):
        nonlocal sent
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        for _ in range(200):
            writer.write(block)
            await writer.drain()
            sent += len(block)

    server = await raw(handler)
    conn = await client.pool("127.0.0.1", server.port).request(b"GET /", b"", None, False, 5, False)
    await asyncio.sleep(0.3)  # the consumer is busy: the upstream must be held back
    assert conn._paused
    assert conn._buffered <= 64 * 1024 + 4 * len(block)
    assert sent < total
    digest = hashlib.sha256()
    received = 0
    while chunk := await conn.read_chunk(5):
        received += len(chunk)
        digest.update(chunk)
    conn.release()
    assert received == total
    assert digest.hexdigest() == hashlib.sha256(block * 200).hexdigest()


async def test_wait_for_head_times_out(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        await asyncio.sleep(5)

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await get(pool, wait=0.2)
    assert 0.15 < time.monotonic() - started < 1.0
    await asyncio.sleep(0.05)  # transports close on the next loop iterations
    assert not pool.idle and not pool.conns  # a timed-out connection is closed, not pooled


async def test_each_wait_on_a_reused_connection_keeps_its_own_limit(raw, client):
    """The connection's deadline timer is armed once: a later wait with a shorter limit, and
    one that starts after an earlier wait's deadline would have passed, still time out at
    their own deadlines."""

    async def handler(reader, writer):  # per connection: answers the first request only
        await server.read_head(reader)
        writer.write(answer(b"ok"))
        await server.read_head(reader)
        await asyncio.sleep(5)

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    assert await get(pool, wait=5.0) == (200, b"ok")  # arms the timer 5 s ahead
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await get(pool, wait=0.2)  # a shorter limit on the same connection
    assert 0.15 < time.monotonic() - started < 1.0
    await asyncio.sleep(0.05)
    assert await get(pool, wait=0.3) == (200, b"ok")  # a new connection, timer 0.3 s ahead
    await asyncio.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):  # the timer fires at the old deadline, then moves
        await get(pool, wait=0.3)
    assert 0.25 < time.monotonic() - started < 1.0
    assert server.connections == 2


async def test_stalled_body_times_out_mid_stream(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a part")
        await asyncio.sleep(5)

    server = await raw(handler)
    conn = await client.pool("127.0.0.1", server.port).request(
        b"GET /", b"", None, False, 0.2, False
    )
    assert await conn.read_chunk(0.2) == b"only a part"
    with pytest.raises(UpstreamTimeout):
        await conn.read_chunk(0.2)
    conn.release()


async def test_body_cut_short_is_unavailable(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a part")
        await writer.drain()
        writer.close()

    server = await raw(handler)
    conn = await client.pool("127.0.0.1", server.port).request(b"GET /", b"", None, False, 2, False)
    with pytest.raises(UpstreamUnavailable):
        await conn.read_all(2)
    conn.release()


async def test_garbage_answer_is_unavailable(raw, client):
    async def handler(reader, writer):
        await server.read_head(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await asyncio.sleep(1)

    server = await raw(handler)
    with pytest.raises(UpstreamUnavailable):
        await get(client.pool("127.0.0.1", server.port))


async def test_idle_pool_is_bounded_swept_and_closed_on_stop(raw):
    async def handler(reader, writer):
        while True:
            await server.read_head(reader)
            writer.write(answer(b"ok"))

    server = await raw(handler)
    upstream = UpstreamClient(PoolSettings(max_idle=2, keepalive_timeout=0.3))
    await upstream.start()
    pool = upstream.pool("127.0.0.1", server.port)
    conns = [await pool.request(b"GET /", b"", None, False, 2, False) for _ in range(4)]
    for conn in conns:
        assert await conn.read_all(2) == b"ok"
        conn.release()
    await asyncio.sleep(0.05)
    assert len(pool.idle) == 2 and len(pool.conns) == 2  # the other two were closed
    assert pool.idle[-1] is conns[1]  # LIFO: the last one given back is reused first
    await asyncio.sleep(0.8)
    assert not pool.idle and not pool.conns  # idle too long: swept
    assert await get(upstream.pool("127.0.0.1", server.port)) == (200, b"ok")
    kept = upstream.pool("127.0.0.1", server.port)
    assert len(kept.idle) == 1
    transport = kept.idle[0].transport
    await upstream.stop()
    assert transport is not None and transport.is_closing()


async def test_streamed_request_body_chunked_and_with_length(raw, client):
    from stackyard.gateway.body import StreamedBody

    async def handler(reader, writer):
        while True:
            head = await server.read_head(reader)
            if b"transfer-encoding: chunked" in head:
                data = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                    chunk = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    data += chunk[:-2]
            else:
                length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                data = await reader.readexactly(length)
            writer.write(answer(hashlib.sha256(data).hexdigest().encode()))

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    parts = [b"a" * 70000, b"b" * 5, b"c" * 100000]

    def body() -> StreamedBody:
        messages = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
        messages[-1]["more_body"] = False

        async def receive():
            return messages.pop(0)

        return StreamedBody(receive, [], 0, 10**9)

    expected = hashlib.sha256(b"".join(parts)).hexdigest().encode()
    conn = await pool.request(b"POST /", b"transfer-encoding: chunked\r\n", body(), True, 5, False)
    assert await conn.read_all(5) == expected
    conn.release()
    length = b"content-length: %d\r\n" % sum(map(len, parts))
    conn = await pool.request(b"PUT /", length, body(), False, 5, False)
    assert await conn.read_all(5) == expected
    conn.release()
    assert server.connections == 1


async def test_odd_framing_through_the_gateway(raw, serve):
    async def handler(reader, writer):
        head = await server.read_head(reader)
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-kind: head\r\n\r\n")
            head = await server.read_head(reader)  # the same connection carries on
        if b"/chunked" in head:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(b"3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"3\r\ndef\r\n0\r\n\r\n")
            await server.read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server = await raw(handler)
    served = await serve()
    ep = Endpoint("raw", "127.0.0.1", server.port)
    served.gateway.update(make_table(1, [RouteSpec("/{p+}", "svc", retries=0)], {"svc": [ep]}))
    status, headers, body = await served.request("HEAD", "/h")
    assert (status, headers["x-kind"], body) == (200, "head", b"")
    assert (await served.request("GET", "/chunked"))[2] == b"abcdef"
    status, headers, body = await served.request("GET", "/end")
    assert (status, body) == (200, b"until the end")
    assert server.connections == 1


async def test_extra_answer_makes_the_connection_unusable(raw, client):
    async def handler(reader, writer):
        while True:
            await server.read_head(reader)
            writer.write(answer(b"one") + b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n")

    server = await raw(handler)
    pool = client.pool("127.0.0.1", server.port)
    assert await get(pool) == (200, b"one")
    assert await get(pool) == (200, b"one")
    assert server.connections == 2

"""Runs an ASGI application on granian's embedded server inside the node's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from granian.constants import Interfaces
from granian.server.embed import Server

from .asgi import ASGIApp

logger = logging.getLogger(__name__)


class ServerError(Exception):
    """The server could not start (port taken, bad address)."""


class AsgiServer:
    """One listening ASGI server; ``start`` returns once the port accepts connections."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, backlog: int = 1024) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._backlog = backlog
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, ready_timeout: float = 10.0) -> None:
        _check_port_free(self.host, self.port)
        self._server = Server(
            self.app,
            address=self.host,
            port=self.port,
            interface=Interfaces.ASGINL,
            backlog=self._backlog,
            log_enabled=False,
            websockets=False,
        )
        self._task = asyncio.create_task(self._server.serve(), name=f"asgi:{self.port}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        while loop.time() < deadline:
            if self._task.done():
                exc = self._task.exception()
                raise ServerError(f"server on {self.url} exited: {exc!r}") from exc
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise ServerError(f"server on {self.url} did not start within {ready_timeout}s")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.stop()  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
        except Exception:
            logger.exception("server on %s failed while stopping", self.url)
        self._server = None
        self._task = None


def _check_port_free(host: str, port: int) -> None:
    if not port_is_free(host, port):
        raise ServerError(f"cannot listen on {host}:{port}: the address is in use or unavailable")


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound (as a server with SO_REUSEADDR would)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (for tests and instances' ``$PORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

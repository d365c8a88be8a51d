"""A Redis server the node runs for a declared cache: ``redis-server`` from the system, its
append-only file in ``<data dir>/caches/<name>/``, on a loopback port kept across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from pathlib import Path

from .errors import MissingBinary
from .processes import ManagedServer, ServerProcess

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 30.0


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found is None and Path(REDIS_SERVER).is_file():
        found = REDIS_SERVER
    if found is None:
        raise MissingBinary("redis-server", "redis-server", f"PATH and {REDIS_SERVER}")
    return found


async def ping(host: str, port: int) -> bool:
    """True when the server answers PING with PONG (not while it loads its data)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 1.0)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return answer.startswith(b"+PONG")


class ManagedRedis(ManagedServer):
    """``caches.<name>`` with no ``url``: one redis-server process."""

    engine = "redis"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    async def start(self) -> None:
        program = find_redis_server()
        pid_file = self.folder / "redis.pid"
        await self._prepare(pid_file, "redis-server", signal.SIGTERM)
        args = [
            program,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", "",
        ]  # fmt: skip
        log = self.folder / "redis.log"
        self.process = await ServerProcess.spawn(args, log=log, what=f"cache {self.name!r}")
        pid_file.write_text(f"{self.process.pid}\n")
        await self.process.wait_ready(lambda: ping(self.host, self.port), START_TIMEOUT)

    async def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.process is not None:
            await self.process.stop(signal.SIGTERM, 15.0)
            (self.folder / "redis.pid").unlink(missing_ok=True)

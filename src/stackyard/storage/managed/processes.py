"""Server processes the node runs for caches and databases: ports kept in the resource's folder,
spawn in a process group of their own with output to a log file, readiness polling, stop with
a signal then SIGKILL, and the removal of a server left running by a node that was killed.
:class:`ManagedServer` is what the Redis and PostgreSQL servers have in common.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from ...serving import free_port
from .errors import ManagedError

LOG_TAIL = 2000


def port_for(folder: Path, host: str) -> int:
    """The port saved in ``folder/port`` when it is still free, else a new free port."""
    saved = folder / "port"
    with contextlib.suppress(OSError, ValueError):
        port = int(saved.read_text().strip())
        if _bindable(host, port):
            return port
    return free_port(host)


def save_port(folder: Path, port: int) -> None:
    (folder / "port").write_text(f"{port}\n")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL:].strip()


async def reap_stale(pid: int | None, program: str, sig: int) -> None:
    """Stop ``pid`` when it is still a ``program`` process (left running by a node that was
    killed): ``sig``, then SIGKILL after 10 s."""
    if pid is None or pid <= 1 or not _is_program(pid, program):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while _is_program(pid, program):
        if loop.time() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.1)


def _is_program(pid: int, program: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":  # a zombie: already gone
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name.startswith(program)


def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


class ServerProcess:
    """One server program, leader of its own process group, writing to ``log``."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, what: str) -> None:
        self._process = process
        self.pid = process.pid
        self.log = log
        self.what = what

    @classmethod
    async def spawn(
        cls, args: Sequence[str], *, log: Path, what: str, **options: Any
    ) -> ServerProcess:
        with log.open("ab") as out:
            try:
                process = await asyncio.create_subprocess_exec(
                    *args,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    **options,
                )
            except OSError as exc:
                raise ManagedError(f"{what}: cannot start {args[0]}: {exc}") from exc
        return cls(process, log, what)

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    async def wait_ready(
        self,
        probe: Callable[[], Awaitable[bool]],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Poll ``probe`` until it answers True; ``ManagedError`` when the server exits first
        or ``timeout`` passes (the server is stopped then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await probe():
            if not self.running:
                raise ManagedError(
                    f"{self.what} exited with {self._process.returncode}; "
                    f"its log ({self.log}):\n{log_tail(self.log)}"
                )
            if loop.time() > deadline:
                await self.stop(signal.SIGTERM, 5.0)
                raise ManagedError(
                    f"{self.what} did not accept connections within {timeout:g}s; "
                    f"its log ({self.log}):\n{log_tail(self.log)}"
                )
            await asyncio.sleep(0.1)

    async def stop(self, sig: int, grace: float) -> None:
        """Send ``sig``, wait up to ``grace`` seconds, then SIGKILL the process group."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        await self._process.wait()


class ManagedServer:
    """A server the node runs for resource ``name``: its ``folder``, its loopback port (kept
    across restarts) and, once started, its process."""

    def __init__(self, name: str, folder: Path, host: str = "127.0.0.1") -> None:
        self.name = name
        self.folder = folder
        self.host = host
        self.port = port_for(folder, host)
        self.process: ServerProcess | None = None

    @property
    def state(self) -> str:
        if self.process is None:
            return "stopped"
        return "running" if self.process.running else "exited"

    async def _prepare(self, pid_file: Path, program: str, sig: int) -> None:
        """Before a start: make the folder, stop a ``program`` server left running by a node
        that was killed (its pid in ``pid_file``; ``sig``, then SIGKILL) and keep the port."""
        self.folder.mkdir(parents=True, exist_ok=True)
        await reap_stale(read_pid(pid_file), program, sig)
        save_port(self.folder, self.port)


async def tcp_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def run(args: Sequence[str], *, what: str, **options: Any) -> tuple[int, str]:
    """Run a short command (initdb, psql); its exit code and output."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            **options,
        )
    except OSError as exc:
        raise ManagedError(f"{what}: cannot run {args[0]}: {exc}") from exc
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")

"""One OS process of one service instance: its environment, spawn, and process-group stop.

The command runs as ``/bin/sh -c <command>`` in a new session, so the shell and everything it
starts (pipelines, background jobs, grandchildren) share one process group whose id is the
shell's pid. A simple command (no list, pipeline, subshell or background job) is run with the
shell's ``exec``, so the instance's pid is the program's own (what ``status`` shows, what a
signal reaches, whose memory is measured) rather than a waiting shell's. Every signal goes to
the whole group: SIGTERM first, SIGKILL once the grace period is over, and SIGKILL to whatever
is left after the main process exits, so an instance never leaves orphans behind.
stdout/stderr are pipes (see ``logs.pump``); stdin is /dev/null.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from .errors import SpawnError

SHELL = "/bin/sh"
COMPOUND = frozenset(";&|()`\n")  # what makes a command more than one program
_PROC = Path("/proc")
_POLL = 0.02
_KILL_SETTLE = 1.0


def instance_env(
    *,
    base_env: Mapping[str, str],
    service_env: Mapping[str, str],
    service: str,
    instance_id: str,
    port: int,
    node_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an instance, later layers winning.

    node's ``os.environ`` < the node's standard environment (``base_env``) < the per-instance
    variables (``PORT``, ``STACKYARD_SERVICE``, ``STACKYARD_INSTANCE_ID``, ``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``) < the service's own ``env``.
    """
    env = dict(os.environ if node_env is None else node_env)
    env.update(base_env)
    attributes = f"service.name={service},service.instance.id={instance_id}"
    if extra := base_env.get("OTEL_RESOURCE_ATTRIBUTES"):
        attributes = f"{attributes},{extra}"
    env.update(
        {
            "PORT": str(port),
            "STACKYARD_SERVICE": service,
            "STACKYARD_INSTANCE_ID": instance_id,
            "OTEL_SERVICE_NAME": service,
            "OTEL_RESOURCE_ATTRIBUTES": attributes,
        }
    )
    env.update(service_env)
    return env


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pgid was reused by someone else's process: not ours
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while a process that is not a zombie is still in the group.

    Orphaned members become zombies until init reaps them, which may take a while; they no
    longer run, so they do not count. Uses ``/proc`` where there is one (Linux), otherwise
    ``killpg(pgid, 0)``, which counts zombies too.
    """
    if not signal_group(pgid, 0):
        return False
    if not _PROC.is_dir():
        return True
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


class ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """``create_subprocess_exec``'s protocol, plus a future resolved the moment the main
    process exits. (On Python 3.11 ``Process.wait()`` only returns once every pipe is closed,
    which never happens while a background grandchild holds stdout.)"""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


def shell_command(command: str) -> str:
    """``command`` for ``sh -c``: prefixed with ``exec`` when it is one simple command."""
    stripped = command.strip()
    if not stripped or COMPOUND.intersection(stripped) or stripped.startswith("exec "):
        return command
    return f"exec {stripped}"


class InstanceProcess:
    """A started ``/bin/sh -c`` process, leader of its own process group."""

    def __init__(self, process: asyncio.subprocess.Process, exited: asyncio.Future[None]) -> None:
        self._process = process
        self._exited = exited
        self.pid: int = process.pid
        self.pgid: int = process.pid  # start_new_session: the shell leads its group
        self._group_dead = False  # once known dead, the pgid may be reused: never signal it

    @classmethod
    async def spawn(cls, command: str, *, cwd: Path, env: Mapping[str, str]) -> InstanceProcess:
        """Start ``command``; raises ``SpawnError`` when the OS refuses.

        This is ``asyncio.create_subprocess_exec`` spelled out, to use ``ExitAwareProtocol``.
        """
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: ExitAwareProtocol(loop),
                SHELL,
                "-c",
                shell_command(command),
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise SpawnError(f"cannot start {command!r}: {exc.filename} does not exist") from exc
        except OSError as exc:
            raise SpawnError(f"cannot start {command!r}: {exc}") from exc
        process = asyncio.subprocess.Process(transport, protocol, loop)
        return cls(process, protocol.exited)

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self._process.stdout is not None
        return self._process.stdout

    @property
    def stderr(self) -> asyncio.StreamReader:
        assert self._process.stderr is not None
        return self._process.stderr

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        """Wait for the main process to exit; its exit code (negative: killed by a signal)."""
        await asyncio.shield(self._exited)
        code = self._process.returncode
        assert code is not None
        return code

    def kill_group(self) -> None:
        """SIGKILL everything left in the group (synchronous: safe in ``finally`` blocks)."""
        if not self._group_dead:
            signal_group(self.pgid, signal.SIGKILL)

    async def stop(self, grace: float) -> int:
        """SIGTERM the group, wait up to ``grace`` seconds for it to empty, then SIGKILL it.

        Returns the main process's exit code once no member of the group runs any more.
        Cancellation SIGKILLs the group before propagating, so a cancelled stop leaves no
        processes either.
        """
        try:
            signal_group(self.pgid, signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait(), grace)
            await self._until_group_dead(deadline - loop.time())
            return await self.kill_remaining()
        except BaseException:
            self.kill_group()
            raise

    async def kill_remaining(self) -> int:
        """SIGKILL what is left of the group and wait until none of it runs; the exit code."""
        self.kill_group()
        code = await self.wait()
        await self._until_group_dead(_KILL_SETTLE)  # SIGKILL is delivered asynchronously
        return code

    async def _until_group_dead(self, limit: float) -> None:
        # orphaned group members have no exit event to wait for: poll
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if not await asyncio.to_thread(group_alive, self.pgid):
                self._group_dead = self.returncode is not None
                return
            await asyncio.sleep(_POLL)

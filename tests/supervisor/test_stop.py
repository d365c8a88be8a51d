"""Stopping: SIGTERM then SIGKILL to the whole process group, grandchildren included."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import time
from pathlib import Path

import pytest

from stackyard.config.models import HealthConfig, ServiceConfig
from stackyard.registry.base import Catalog
from stackyard.supervisor import InstanceState, LogRecord, RestartPolicy
from stackyard.supervisor.process import InstanceProcess

from .conftest import PY, SupervisorFactory, group_gone, wait_until

STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time

    signal.signal(signal.SIGTERM, lambda *_: print("got SIGTERM", flush=True))
    grandchild = (
        "import signal, time;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('grandchild up', flush=True);"
        "time.sleep(300)"
    )
    subprocess.Popen([sys.executable, "-c", grandchild])
    print("ready", flush=True)
    while True:
        time.sleep(1)
    """
)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    members.append(int(entry.name))
    return members


@pytest.fixture
def stubborn(tmp_path: Path) -> ServiceConfig:
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    # the shell stays the group leader: a background sleep plus python with its own child
    return ServiceConfig(
        command=f"sleep 300 & {PY} stubborn.py", health=HealthConfig(ttl=30), stop_grace=0.5
    )


def messages(records: list[LogRecord]) -> list[str]:
    return [r["message"] for r in records]


async def test_stop_escalates_to_sigkill_and_leaves_no_process(
    stubborn: ServiceConfig, catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    records: list[LogRecord] = []
    supervisor = make_supervisor({"stub": stubborn}, on_record=records.append)
    await supervisor.start()
    await wait_until(lambda: {"ready", "grandchild up"} <= set(messages(records)))
    (status,) = supervisor.status()
    assert status.pid is not None
    pgid = status.pid
    assert len(group_members(pgid)) == 4  # sh, sleep, python, python's child

    started = time.monotonic()
    await supervisor.stop()
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3, elapsed
    assert "got SIGTERM" in messages(records)  # SIGTERM came first
    assert group_members(pgid) == []  # everything that ran is dead at once
    await wait_until(lambda: group_gone(pgid), within=10)  # ... and reaped
    assert catalog.health("stub") == []
    assert supervisor.status()[0].state is InstanceState.STOPPED


async def test_cancelled_stop_still_kills_the_group(
    stubborn: ServiceConfig, make_supervisor: SupervisorFactory
) -> None:
    records: list[LogRecord] = []
    slow = stubborn.model_copy(update={"stop_grace": 60.0})
    supervisor = make_supervisor({"stub": slow}, on_record=records.append)
    await supervisor.start()
    await wait_until(lambda: {"ready", "grandchild up"} <= set(messages(records)))
    pgid = supervisor.status()[0].pid
    assert pgid is not None

    stopping = asyncio.create_task(supervisor.stop())
    await wait_until(lambda: "got SIGTERM" in messages(records))
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await wait_until(lambda: group_members(pgid) == [], within=2)
    await wait_until(lambda: group_gone(pgid), within=10)


async def test_leftovers_of_a_crashed_instance_are_killed(
    catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    records: list[LogRecord] = []
    crashing = ServiceConfig(
        command="sleep 300 & echo started; exit 1", health=HealthConfig(tcp=True)
    )
    supervisor = make_supervisor(
        {"leaky": crashing},
        on_record=records.append,
        restart_policy=RestartPolicy(initial_delay=5.0),
    )
    await supervisor.start()
    pgid = supervisor.status()[0].pid
    assert pgid is not None
    await wait_until(lambda: supervisor.status()[0].last_exit_code == 1)  # after the cleanup
    assert supervisor.status()[0].state is InstanceState.BACKOFF
    assert group_members(pgid) == []  # the background sleep went with the shell
    assert catalog.health("leaky") == []


async def test_exit_is_seen_while_a_grandchild_holds_the_pipes(tmp_path: Path) -> None:
    process = await InstanceProcess.spawn("sleep 300 & exit 7", cwd=tmp_path, env={})
    try:
        assert await asyncio.wait_for(process.wait(), 5) == 7
        assert group_members(process.pgid) != []  # the sleep is still there...
        assert await process.kill_remaining() == 7
        assert group_members(process.pgid) == []  # ...until the group is killed
    finally:
        process.kill_group()


def program_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]


async def test_a_simple_command_is_the_instance_process_itself(tmp_path: Path) -> None:
    process = await InstanceProcess.spawn("sleep 300", cwd=tmp_path, env={})
    try:
        # exec (done by the shell as it starts): no shell waits in between
        await wait_until(lambda: program_of(process.pgid) == b"sleep")
    finally:
        process.kill_group()


async def test_a_compound_command_keeps_its_shell(tmp_path: Path) -> None:
    process = await InstanceProcess.spawn("sleep 300; exit 3", cwd=tmp_path, env={})
    try:
        assert program_of(process.pgid) == b"/bin/sh"  # `exec` would have lost the `exit 3`
    finally:
        process.kill_group()

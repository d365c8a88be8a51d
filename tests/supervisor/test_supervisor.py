"""Supervisor lifecycle with real processes and the real Registry."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from stackyard.config.models import HealthConfig, ServiceConfig
from stackyard.registry.base import Catalog
from stackyard.supervisor import (
    InstanceState,
    RestartPolicy,
    SupervisorStateError,
    UnknownInstanceError,
    UnknownServiceError,
)

from .conftest import PY, SupervisorFactory, group_gone, http_service, wait_until

SLEEPER = ServiceConfig(command="exec sleep 300", health=HealthConfig(ttl=30), stop_grace=2)


def ids(catalog: Catalog, name: str) -> set[str]:
    return {h.registration.id for h in catalog.health(name)}


def passing(catalog: Catalog, name: str) -> set[str]:
    return {e.instance_id for e in catalog.passing(name)}


async def test_replicas_get_distinct_ports_and_the_standard_env(
    tmp_path: Path, server_script: Path, catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    (tmp_path / "app").mkdir()
    service = http_service(
        server_script, replicas=2, cwd="app", env={"OVERRIDDEN": "by-service", "OWN": "1"}
    )
    supervisor = make_supervisor({"web": service})
    await supervisor.start()

    statuses = supervisor.status()
    assert [s.instance_id for s in statuses] == ["web-1", "web-2"]
    assert len({s.port for s in statuses}) == 2
    assert all(s.pid and s.started_at and s.restarts == 0 for s in statuses)
    regs = {h.registration.id: h.registration for h in catalog.health("web")}
    assert set(regs) == {"web-1", "web-2"}
    reg = regs["web-1"]
    assert (reg.name, reg.address, reg.port) == ("web", "127.0.0.1", statuses[0].port)
    assert reg.meta == {"pid": str(statuses[0].pid), "managed": "stackyard"}
    (check,) = reg.checks
    assert (check.check_id, check.kind) == ("service:web-1", "http")
    assert check.target == f"http://127.0.0.1:{statuses[0].port}/health"

    await wait_until(lambda: passing(catalog, "web") == {"web-1", "web-2"})
    assert {s.state for s in supervisor.status()} == {InstanceState.RUNNING}

    async with aiohttp.ClientSession() as session:
        for status in statuses:
            async with session.get(f"http://127.0.0.1:{status.port}/env") as response:
                doc = await response.json(content_type=None)
            env = doc["env"]
            assert Path(doc["cwd"]) == (tmp_path / "app").resolve()
            assert env["PORT"] == str(status.port)
            assert env["STACKYARD_SERVICE"] == "web"
            assert env["STACKYARD_INSTANCE_ID"] == status.instance_id
            assert env["OTEL_SERVICE_NAME"] == "web"
            assert env["OTEL_RESOURCE_ATTRIBUTES"] == (
                f"service.name=web,service.instance.id={status.instance_id},"
                "deployment.environment=test"
            )
            assert env["STACKYARD_URL"] == "http://127.0.0.1:4566"
            assert env["OVERRIDDEN"] == "by-service"
            assert env["OWN"] == "1"
            assert env["PATH"] == os.environ["PATH"]  # the node's own environment

    started = time.monotonic()
    await supervisor.stop()
    assert time.monotonic() - started < 2  # well-behaved processes exit on SIGTERM
    assert ids(catalog, "web") == set()
    assert {s.state for s in supervisor.status()} == {InstanceState.STOPPED}
    await wait_until(lambda: all(group_gone(s.pid or 0) for s in statuses), within=5)


async def test_killed_instance_is_deregistered_restarted_and_passing_again(
    server_script: Path, catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    policy = RestartPolicy(initial_delay=0.5, max_delay=2.0)
    supervisor = make_supervisor({"web": http_service(server_script)}, restart_policy=policy)
    await supervisor.start()
    await wait_until(lambda: passing(catalog, "web") == {"web-1"})
    (before,) = supervisor.status()
    assert before.pid is not None

    os.killpg(before.pid, signal.SIGKILL)
    await wait_until(lambda: ids(catalog, "web") == set(), within=2)  # deregistered at once
    await wait_until(lambda: supervisor.status()[0].last_exit_code == -signal.SIGKILL)
    (waiting,) = supervisor.status()
    assert waiting.state is InstanceState.BACKOFF
    assert waiting.restarts == 0

    await wait_until(lambda: supervisor.status()[0].restarts == 1, within=5)
    await wait_until(lambda: passing(catalog, "web") == {"web-1"})
    (after,) = supervisor.status()
    assert after.pid != before.pid
    assert after.port == before.port  # the port was still free, so it is kept
    assert after.state is InstanceState.RUNNING
    (reg,) = [h.registration for h in catalog.health("web")]
    assert reg.meta["pid"] == str(after.pid)


async def test_crash_loop_backs_off_without_spinning(
    catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    starts: list[float] = []

    def on_record(record: dict[str, str]) -> None:
        if record["message"] == "boot":
            starts.append(time.monotonic())

    crashing = ServiceConfig(command="echo boot; exit 3", health=HealthConfig(tcp=True))
    policy = RestartPolicy(initial_delay=0.1, max_delay=5.0, factor=2.0)
    supervisor = make_supervisor({"bad": crashing}, on_record=on_record, restart_policy=policy)
    cpu_before = time.process_time()
    wall_before = time.monotonic()
    await supervisor.start()
    await wait_until(lambda: len(starts) >= 5, within=10)  # 0.1 + 0.2 + 0.4 + 0.8 s of backoff
    cpu = time.process_time() - cpu_before
    wall = time.monotonic() - wall_before

    gaps = [b - a for a, b in itertools.pairwise(starts)][:4]
    expected = [0.1, 0.2, 0.4, 0.8]
    for gap, delay in zip(gaps, expected, strict=True):
        assert delay * 0.95 <= gap < delay + 0.5, (gaps, expected)  # backoff + spawn overhead
    assert gaps[-1] > 3 * gaps[0], gaps
    assert cpu < wall * 0.5, (cpu, wall)
    (status,) = supervisor.status()
    assert status.restarts >= 4
    assert status.last_exit_code == 3
    assert status.state in (InstanceState.BACKOFF, InstanceState.STARTING)
    assert ids(catalog, "bad") <= {"bad-1"}


async def test_scale_up_and_down(catalog: Catalog, make_supervisor: SupervisorFactory) -> None:
    supervisor = make_supervisor({"work": SLEEPER})
    await supervisor.start()
    assert [s.instance_id for s in supervisor.status()] == ["work-1"]

    await supervisor.scale("work", 3)
    statuses = supervisor.status()
    assert [s.instance_id for s in statuses] == ["work-1", "work-2", "work-3"]
    assert len({s.port for s in statuses}) == 3
    assert ids(catalog, "work") == {"work-1", "work-2", "work-3"}

    await supervisor.scale("work", 1)
    assert [s.instance_id for s in supervisor.status()] == ["work-1"]
    assert ids(catalog, "work") == {"work-1"}
    removed = [s.pid for s in statuses[1:] if s.pid]
    assert len(removed) == 2
    await wait_until(lambda: all(group_gone(pid) for pid in removed), within=5)

    await supervisor.scale("work", 2)
    assert [s.instance_id for s in supervisor.status()] == ["work-1", "work-2"]
    await supervisor.scale("work", 0)
    assert supervisor.status() == []
    assert ids(catalog, "work") == set()

    with pytest.raises(UnknownServiceError):
        await supervisor.scale("nope", 1)
    with pytest.raises(ValueError):
        await supervisor.scale("work", -1)


async def test_restart_instance(catalog: Catalog, make_supervisor: SupervisorFactory) -> None:
    supervisor = make_supervisor({"work": SLEEPER.model_copy(update={"replicas": 2})})
    await supervisor.start()
    first, second = supervisor.status()
    await supervisor.restart_instance("work-1")
    again, untouched = supervisor.status()
    assert again.pid != first.pid and again.pid is not None
    assert again.restarts == 1
    assert again.port == first.port
    assert again.last_exit_code == -signal.SIGTERM
    assert untouched == second
    assert ids(catalog, "work") == {"work-1", "work-2"}
    await wait_until(lambda: group_gone(first.pid or 0), within=5)
    with pytest.raises(UnknownInstanceError):
        await supervisor.restart_instance("work-9")


async def test_spawn_failure_is_reported_and_retried(
    catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    broken = ServiceConfig(command=f"{PY} -c 'pass'", cwd="missing-dir")
    supervisor = make_supervisor({"broken": broken})
    await supervisor.start()  # returns: the failure is a status, not an exception
    (status,) = supervisor.status()
    assert status.state is InstanceState.FAILED
    assert status.pid is None
    await wait_until(lambda: supervisor.status()[0].restarts >= 2, within=5)
    assert ids(catalog, "broken") == set()
    await supervisor.stop()
    assert supervisor.status()[0].state is InstanceState.STOPPED


async def test_lifecycle_errors(make_supervisor: SupervisorFactory) -> None:
    supervisor = make_supervisor({"work": SLEEPER.model_copy(update={"replicas": 0})})
    with pytest.raises(SupervisorStateError):
        await supervisor.scale("work", 1)
    await supervisor.start()
    assert supervisor.status() == []
    with pytest.raises(SupervisorStateError):
        await supervisor.start()
    await supervisor.stop()
    await supervisor.stop()  # idempotent
    with pytest.raises(SupervisorStateError):
        await supervisor.restart_instance("work-1")

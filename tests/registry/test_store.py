"""Persistence: registrations (with their check specs) and KV survive a restart of the node."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stackyard.registry import CheckSpec, Health, Registry, ServiceRegistration


async def test_registrations_and_kv_survive_restart(tmp_path: Path) -> None:
    first = Registry(tmp_path)
    await first.start()
    spec = CheckSpec(
        "api-ttl",
        "ttl",
        name="heartbeat",
        ttl=30,
        deregister_after=600,
        notes="n",
        success_before_passing=2,
        failures_before_critical=3,
    )
    http = CheckSpec(
        "api-http",
        "http",
        target="http://127.0.0.1:1/health",
        interval=60,
        timeout=2,
        method="HEAD",
        headers=(("X-Probe", "1"),),
    )
    reg = ServiceRegistration(
        id="api-1",
        name="api",
        address="10.0.0.5",
        port=8080,
        tags=("a", "b"),
        meta={"v": "1"},
        checks=(spec, http),
    )
    await first.register(reg)
    await first.register(ServiceRegistration(id="gone-1", name="gone"))
    await first.deregister("gone-1")
    await first.update_ttl("api-ttl", Health.PASSING)
    await first.kv.put("cfg/a", b"\x00\xffbytes", flags=(1 << 64) - 1)
    await first.kv.put("cfg/b", b"2")
    await first.kv.delete("cfg/b")
    kv_index = first.kv.index
    index = first.index
    await first.stop()

    assert (tmp_path / "registry.sqlite3").exists()
    with sqlite3.connect(tmp_path / "registry.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    second = Registry(tmp_path)
    await second.start()
    try:
        [restored] = second.health("api")
        assert restored.registration == reg
        assert second.health("gone") == []
        # checks start again at their initial status
        assert second.check("api-ttl").status is Health.CRITICAL  # type: ignore[union-attr]
        entry = second.kv.get("cfg/a")
        assert entry is not None
        assert entry.value == b"\x00\xffbytes"
        assert entry.flags == (1 << 64) - 1
        assert second.kv.get("cfg/b") is None
        # indexes never go backwards across a restart
        assert second.index > index
        assert second.kv.index > kv_index
        await second.kv.put("cfg/c", b"3")
        assert second.kv.get("cfg/c").modify_index > kv_index  # type: ignore[union-attr]
    finally:
        await second.stop()

"""Starting and stopping a node: refusal of bad stacks, readiness, signals, no orphans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stackyard.testing import NodeProcess, wait_until

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_invalid_stack_is_refused_before_anything_starts(tmp_path: Path) -> None:
    stack = tmp_path / "stackyard.yml"
    stack.write_text(
        "name: bad\nservices:\n  web:\n    comand: python app.py\n    replicas: -1\n"
        "api:\n  routes:\n    - path: /x\n      service: nowhere\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "stackyard", "up", str(tmp_path), "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    err = " ".join(result.stderr.split())
    assert f"{stack}:3: services.web.command: required field is missing" in err
    assert f"{stack}:4: services.web.comand: unknown field" in err
    assert f"{stack}:5: services.web.replicas:" in err
    assert "nothing was started" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_process_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    node = NodeProcess(SHOP, data_dir=tmp_path / "data").start()
    try:
        node.wait_ready(90)
        pids = [i["pid"] for s in node.status()["services"] for i in s["instances"]]
        assert len(pids) == 5 and all(alive(pid) for pid in pids)
    finally:
        code = node.stop(sig)
    assert code == 0, node.output()
    assert "Stopped" in node.output()
    wait_until(lambda: not any(alive(pid) for pid in pids), 5, what="all instances to exit")


def test_health_is_503_until_every_service_passes(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text(
        "name: slow\nservices:\n"
        "  never:\n    command: sleep 600\n    health: {http: /health, interval: 200ms}\n"
    )
    with NodeProcess(tmp_path, data_dir=tmp_path / "data") as node:
        wait_until(lambda: _answers(node), 30, what="the control API")
        status, body = node.health()
        assert status == 503
        assert body["status"] == "starting"
        assert body["services"] == {"never": {"wanted": 1, "passing": 0}}


def _answers(node: NodeProcess) -> bool:
    try:
        node.health()
    except OSError:
        return False
    return True


def test_a_node_whose_port_was_taken_meanwhile_starts_again_on_new_ones(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text("name: tiny\n")
    node = NodeProcess(tmp_path, data_dir=tmp_path / "data")
    with socket.socket() as taken:  # another process took the port after it was chosen
        taken.bind(("127.0.0.1", node.control_port))
        taken.listen()
        first = node.control_port
        with node:
            node.wait_ready(30)
            assert node.control_port != first
            assert node.health()[0] == 200

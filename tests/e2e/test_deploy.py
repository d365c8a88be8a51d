"""``stackyard deploy`` on a real node under load: the diff, the swap, and no failed request."""

from __future__ import annotations

import shutil
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from stackyard.cli.main import cli
from stackyard.testing import NodeProcess, wait_until

APP = Path(__file__).parent / "apps" / "deploy"


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    folder = tmp_path / "stack"
    shutil.copytree(APP, folder)
    return folder


@pytest.fixture
def node(stack: Path, tmp_path: Path) -> Iterator[NodeProcess]:
    with NodeProcess(stack, data_dir=tmp_path / "data", env={"PYTHON": sys.executable}) as running:
        running.wait_ready(60)
        yield running


class Load:
    """Clients sending GET requests in a loop until stopped; counts statuses."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.statuses: Counter[int | str] = Counter()
        self.colors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.url)
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.colors[response.json()["color"]] += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def deploy(node: NodeProcess, stack: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["deploy", str(stack), "--url", node.control_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_prints_the_diff_and_changes_nothing(node: NodeProcess, stack: Path) -> None:
    shutil.copy(stack / "v2.yml", stack / "stackyard.yml")
    output = deploy(node, stack, "--dry-run")
    rows = {tuple(line.split()[:4]) for line in output.splitlines()}
    for row in [
        ("~", "service", "a", "changed"),
        ("-", "service", "b", "removed"),
        ("+", "service", "c", "added"),
        ("~", "function", "hello", "changed"),
        ("-", "route", "ANY", "/b"),
        ("+", "route", "ANY", "/c"),
        ("+", "route", "ANY", "/ping"),
    ]:
        assert row in rows, output
    assert "Dry run" in output
    assert httpx.get(f"{node.gateway_url}/b", timeout=5).status_code == 200
    assert httpx.get(f"{node.gateway_url}/ping", timeout=5).status_code == 404


def test_deploy_under_load_loses_nothing(node: NodeProcess, stack: Path) -> None:
    gateway = node.gateway_url
    assert httpx.get(f"{gateway}/hello", timeout=5).text == "hi"
    shutil.copy(stack / "v2.yml", stack / "stackyard.yml")
    with Load(f"{gateway}/a/x") as load:
        wait_until(lambda: load.statuses[200] >= 10, 20)  # traffic flows before the deploy
        before = load.statuses[200]
        output = deploy(node, stack)
        during = load.statuses[200] - before
    assert "Deployed 7 change(s)" in output, output
    assert set(load.statuses) == {200}, load.statuses
    assert during > 0, load.statuses
    assert set(load.colors) <= {"blue", "green"}
    # the new definitions are in force, the old instances are gone
    colors = {httpx.get(f"{gateway}/a/x", timeout=5).json()["color"] for _ in range(10)}
    assert colors == {"green"}
    assert httpx.get(f"{gateway}/c", timeout=5).json()["service"] == "c"
    assert httpx.get(f"{gateway}/b", timeout=5).status_code == 404
    assert httpx.get(f"{gateway}/ping", timeout=5).text == "pong"
    assert httpx.get(f"{gateway}/hello", timeout=5).text == "hello"
    services = {entry["name"] for entry in node.status()["services"]}
    assert services == {"a", "c"}
    assert len(node.instances("a")) == 2, node.instances("a")
    # deploying the same file again changes nothing
    assert "No changes" in deploy(node, stack)


def test_an_invalid_stack_is_refused_with_its_line(node: NodeProcess, stack: Path) -> None:
    (stack / "stackyard.yml").write_text(
        (stack / "v2.yml").read_text().replace("service: c", "service: nope")
    )
    result = CliRunner().invoke(cli, ["deploy", str(stack), "--url", node.control_url])
    assert result.exit_code == 1
    assert "stackyard.yml:19: api.routes.1.service: no service named 'nope'" in result.output
    assert httpx.get(f"{node.gateway_url}/b", timeout=5).status_code == 200

"""``stackyard restart`` and ``stackyard scale``: act on a running node's services through the
services admin API (``/_stackyard/services/...``)."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import click
from rich.console import Console

from .client import ControlClient, url_option

PASSING_TIMEOUT = 60.0  # a rolling restart waits this long for each instance to pass


def _service_path(service: str) -> str:
    return "/_stackyard/services/" + urllib.parse.quote(service, safe="")


@click.command()
@click.argument("service")
@click.argument("instance", required=False)
@url_option
def restart(service: str, instance: str | None, url: str) -> None:
    """Restart one instance of SERVICE, or all of them one after the other.

    Without INSTANCE every instance is restarted in turn, each once the one before passes its
    health check again, so the service keeps answering.
    """
    client = ControlClient(url, timeout=60.0)
    console = Console()
    path = _service_path(service)
    if instance is not None:
        targets = [instance]
    else:
        targets = [i["instance_id"] for i in client.get_json(path)["instances"]]
        if not targets:
            raise click.ClickException(f"{service} has no instances")
    for target in targets:
        quoted = urllib.parse.quote(target, safe="")
        answer = client.post_json(f"{path}/instances/{quoted}/restart")
        console.print(f"restarted {target} (pid {answer.get('pid') or '-'})")
        if instance is None and target != targets[-1]:
            _until_passing(client, path, target)


@click.command()
@click.argument("service")
@click.argument("replicas", type=click.IntRange(0, 64))
@url_option
def scale(service: str, replicas: int, url: str) -> None:
    """Run REPLICAS instances of SERVICE (until the next deploy changes the service)."""
    client = ControlClient(url, timeout=60.0)
    doc = client.call_json("PUT", _service_path(service) + "/replicas", {"replicas": replicas})
    names = ", ".join(i["instance_id"] for i in doc["instances"]) or "none"
    Console().print(f"{service}: {doc['replicas']} replicas ({names})")


def _until_passing(client: ControlClient, path: str, instance_id: str) -> None:
    deadline = time.monotonic() + PASSING_TIMEOUT
    while time.monotonic() < deadline:
        doc: Any = client.get_json(path, history="0")
        if any(
            i["instance_id"] == instance_id and i["health"] == "passing" for i in doc["instances"]
        ):
            return
        time.sleep(0.25)
    raise click.ClickException(f"{instance_id} did not pass its health check within 60 s")

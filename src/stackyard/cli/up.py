"""`stackyard up PATH`: validate the stack, run a node in the foreground, stop it on a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ..config import ConfigError, LoadedStack, load_stack
from ..node import Node, NodeSettings
from ..serving import ServerError

READY_TIMEOUT = 60.0


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("."))
@click.option("--port", default=8080, show_default=True, help="Gateway port.")
@click.option("--control-port", default=4566, show_default=True, help="Control API port.")
@click.option("--dns-port", default=8600, show_default=True, help="DNS (UDP) port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where state and logs go [default: .stackyard/ beside the stack file].",
)
@click.option("--stage", help="Stage name [default: the stack's, else dev].")
@click.option("-v", "--verbose", is_flag=True, help="Log the node's own events.")
def up(
    path: Path,
    port: int,
    control_port: int,
    dns_port: int,
    host: str,
    data_dir: Path | None,
    stage: str | None,
    verbose: bool,
) -> None:
    """Start the stack at PATH (a folder with stackyard.yml, or the file) and keep it running."""
    console = Console(stderr=True)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        stack = load_stack(path, os.environ, {"stage": stage} if stage else {})
    except ConfigError as exc:
        for problem in exc.problems:
            console.print(f"[red]error[/] {problem}", highlight=False, soft_wrap=True)
        console.print(f"[red]{len(exc.problems)} problem(s); nothing was started.[/]")
        sys.exit(2)
    settings = NodeSettings(
        data_dir=(data_dir or stack.root / ".stackyard").resolve(),
        host=host,
        gateway_port=port,
        control_port=control_port,
        dns_port=dns_port,
        stage=stage or stack.config.stage or "dev",
    )
    for warning in stack.warnings:
        console.print(f"[yellow]warning[/] {warning}", highlight=False)
    sys.exit(run_in_loop(_run(stack, settings, console)))


def run_in_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)


async def _run(stack: LoadedStack, settings: NodeSettings, console: Console) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    node = Node(stack, settings)
    with console.status(f"Starting [bold]{stack.config.name}[/]…"):
        try:
            await node.start()
        except ServerError as exc:
            console.print(f"[red]error[/] {exc}")
            return 1
    await _wait_ready(node, console, stop)
    if not stop.is_set():
        _print_welcome(node, console)
        await stop.wait()
    with console.status("Stopping…"):
        await node.stop()
    console.print("Stopped; every process the node started has exited.")
    return 0


async def _wait_ready(node: Node, console: Console, stop: asyncio.Event) -> None:
    services = node.stack.config.services
    with console.status("") as status:
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while not node.ready() and not stop.is_set():
            counts = ", ".join(
                f"{name} {len(node.registry.passing(name))}/{svc.replicas}"
                for name, svc in services.items()
            )
            status.update(f"Waiting for services to pass their health checks: {counts}")
            if asyncio.get_running_loop().time() > deadline:
                console.print(
                    f"[yellow]Not every service is healthy after {READY_TIMEOUT:.0f}s[/] "
                    f"({counts}); see `stackyard logs` — the node keeps trying."
                )
                return
            await node.wait_ready(0.2)


def _print_welcome(node: Node, console: Console) -> None:
    settings = node.settings
    table = Table.grid(padding=(0, 2))
    table.add_row("Gateway", settings.gateway_url)
    table.add_row("Control API", settings.control_url)
    console_url = f"{settings.control_url}/_console/"
    if node.guarded:  # beyond loopback: the console and admin API ask for the token
        table.add_row("Console", f"{console_url}?token={node.token}")
        table.add_row("Token", f"STACKYARD_TOKEN={node.token} (for the CLI and admin API)")
    else:
        table.add_row("Console", console_url)
    table.add_row("Health", f"{settings.control_url}/_stackyard/health")
    table.add_row("Consul API", f"{settings.control_url}/v1/catalog/services")
    table.add_row("DNS", f"dig @{settings.host} -p {settings.dns_port} <service>.service.stackyard")
    routes = node.gateway.table.routes
    for route in routes[:10]:
        methods = ",".join(sorted(route.methods))
        target = f"λ {route.function}" if route.integration == "function" else route.service
        table.add_row(f"  {methods}", f"{settings.gateway_url}{route.path}  → {target}")
    if len(routes) > 10:
        table.add_row("", f"  … {len(routes) - 10} more: stackyard status")
    env = f"STACKYARD_URL={settings.control_url} " if settings.control_port != 4566 else ""
    table.add_row("Next", f"{env}stackyard status   |   {env}stackyard logs -f")
    console.print(
        Panel(table, title=f"[bold]{node.stack.config.name}[/] is up", subtitle="Ctrl-C stops it")
    )

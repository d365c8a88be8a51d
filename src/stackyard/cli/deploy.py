"""``stackyard deploy``: apply an edited stack to the running node and show what changed."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .client import url_option

_STYLE = {"added": "green", "changed": "yellow", "removed": "red"}
_SIGN = {"added": "+", "changed": "~", "removed": "-"}


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("."))
@click.option("--dry-run", is_flag=True, help="Print the changes without applying them.")
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for the node."
)
@url_option
def deploy(path: Path, dry_run: bool, timeout: float, url: str) -> None:
    """Apply the stack at PATH (file or folder, default: here) to the running node.

    New instances must pass their health checks before traffic moves to them; the route
    table swaps in one step; what did not change keeps running.
    """
    console = Console()
    query = urllib.parse.urlencode(
        {"path": str(path.resolve()), "dry_run": "1" if dry_run else "0"}
    )
    request = urllib.request.Request(f"{url.rstrip('/')}/_stackyard/deploy?{query}", method="POST")
    if token := os.environ.get("STACKYARD_TOKEN"):  # a node beyond loopback asks for it
        request.add_header("authorization", f"Bearer {token}")
    with console.status("deploying…" if not dry_run else "comparing…"):
        document = _send(request, url, timeout)
    for warning in document.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")
    changes: list[dict[str, Any]] = document["changes"]
    if not changes:
        console.print(f"No changes: the node already runs {document['stack']}.")
        return
    table = Table("", "kind", "name", "action", "note", box=None)
    for change in changes:
        action = change["action"]
        note = "takes effect at the next `stackyard up`" if change["needs_restart"] else ""
        table.add_row(
            f"[{_STYLE[action]}]{_SIGN[action]}[/]",
            change["kind"],
            change["name"],
            f"[{_STYLE[action]}]{action}[/]",
            note,
        )
    console.print(table)
    if document["applied"]:
        console.print(f"[green]Deployed[/] {len(changes)} change(s) to {url}.")
        console.print(f"Check it: stackyard status --url {url}")
    else:
        console.print("Dry run: nothing applied. Run without --dry-run to apply.")


def _send(request: urllib.request.Request, url: str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise click.ClickException(f"the node answered {exc.code}") from exc
        problems = body.get("problems")
        if problems:
            raise click.ClickException("the stack is not valid:\n" + "\n".join(problems)) from exc
        raise click.ClickException(body.get("error", {}).get("message", str(exc))) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(
            f"no Stackyard node answers at {url} ({getattr(exc, 'reason', exc)}).\n"
            "Start one with `stackyard up PATH`, or point --url / STACKYARD_URL at it."
        ) from exc

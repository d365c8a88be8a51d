"""``stackyard invoke`` and ``stackyard functions``: call a running node's Lambda API."""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .client import ControlClient, url_option


def _read_data(data: str) -> bytes:
    if data.startswith("@"):
        path = Path(data[1:])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            message = f"cannot read {path}: {exc.strerror}"
            raise click.BadParameter(message, param_hint="--data") from exc
    else:
        raw = data.encode()
    try:
        json.loads(raw or b"{}")
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--data") from exc
    return raw


@click.command()
@click.argument("function")
@click.option("-d", "--data", default="{}", help="The event: JSON, or @file with JSON.")
@click.option("--async", "is_async", is_flag=True, help="Invoke asynchronously (Event).")
@click.option("--tail", is_flag=True, help="Print the invocation's log (last 4 KB) to stderr.")
@url_option
def invoke(function: str, data: str, is_async: bool, tail: bool, url: str) -> None:
    """Invoke FUNCTION on the running node and print its result.

    Exits with status 1 when the function failed (its error document is printed).
    """
    payload = _read_data(data)
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Invocation-Type": "Event" if is_async else "RequestResponse",
    }
    if tail and not is_async:
        headers["X-Amz-Log-Type"] = "Tail"
    name = urllib.parse.quote(function, safe="")
    request = urllib.request.Request(
        f"{url.rstrip('/')}/2015-03-31/functions/{name}/invocations",
        data=payload,
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=960) as response:
            body = response.read()
            status = response.status
            function_error = response.headers.get("X-Amz-Function-Error")
            log = response.headers.get("X-Amz-Log-Result")
            request_id = response.headers.get("x-amzn-RequestId", "")
    except urllib.error.HTTPError as exc:
        raise click.ClickException(_aws_error_text(exc)) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(
            f"no Stackyard node answers at {url} ({reason}).\n"
            "Start one with `stackyard up PATH`, or point --url / STACKYARD_URL at it."
        ) from exc
    if status == 202:
        click.echo(f"accepted: request {request_id}")
        return
    if log:
        click.echo(base64.b64decode(log).decode("utf-8", "replace"), err=True, nl=False)
    click.echo(body.decode("utf-8", "replace"))
    if function_error:
        sys.exit(1)


@click.command()
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw document.")
def functions(url: str, as_json: bool) -> None:
    """The functions of the running node: workers, pending events, dead letters."""
    doc = ControlClient(url).get_json("/_stackyard/functions")
    console = Console()
    if as_json:
        console.print_json(data=doc)
        return
    table = Table(
        "function", "runtime", "handler", "workers", "busy", "queued", "pending", "dead letters"
    )
    for item in doc["functions"]:
        table.add_row(
            item["name"],
            item["runtime"],
            item["handler"],
            f"{item['workers']}/{item['concurrency']}",
            str(item["busy"]),
            str(item["queued"]),
            str(item["pending_events"]),
            str(item["dead_letters"]),
        )
    console.print(table)


@click.command("dead-letters")
@click.argument("function", required=False)
@click.option(
    "--redrive", "redrive_id", metavar="ID", help="Send this dead letter back to its function."
)
@click.option("-n", "--limit", default=100, show_default=True)
@url_option
def dead_letters(function: str | None, redrive_id: str | None, limit: int, url: str) -> None:
    """Async invocations that failed every attempt (of FUNCTION, or of all functions)."""
    client = ControlClient(url)
    console = Console()
    if redrive_id:
        answer = client.post_json(f"/_stackyard/functions/dead-letters/{redrive_id}/redrive")
        console.print(f"{answer['id']} queued for delivery again")
        return
    doc = client.get_json(
        "/_stackyard/functions/dead-letters", function=function or "", limit=str(limit)
    )
    letters = doc["dead_letters"]
    if not letters:
        console.print("no dead letters")
        return
    for letter in letters:
        payload = letter["payload"]
        console.print(
            f"[bold]{letter['id']}[/]  {letter['function']}  attempts {letter['attempts']}  "
            f"failed {letter['failed_at']}",
            highlight=False,
        )
        console.print(f"  error   {letter['error']}", highlight=False, soft_wrap=True, markup=False)
        console.print(
            f"  payload {payload if len(payload) <= 200 else payload[:197] + '...'}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    console.print("Send one back: stackyard dead-letters --redrive ID")


def _aws_error_text(exc: urllib.error.HTTPError) -> str:
    error_type = exc.headers.get("x-amzn-ErrorType", "") if exc.headers else ""
    try:
        body = json.loads(exc.read())
        message = body.get("message") or body.get("Message") or body["error"]["message"]
    except (ValueError, KeyError, TypeError, AttributeError):
        message = str(exc.reason)
    return f"{exc.code} {error_type}: {message}".replace(" :", ":")

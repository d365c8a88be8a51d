"""``stackyard keys create|list|revoke|usage``: API keys of the running node's gateway."""

from __future__ import annotations

import datetime
import shlex
import urllib.parse

import click
from rich.console import Console
from rich.table import Table

from .client import ControlClient, url_option

KEYS_PATH = "/_stackyard/api/keys"


def _key_path(name: str) -> str:
    return f"{KEYS_PATH}/{urllib.parse.quote(name, safe='')}"


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group()
def keys() -> None:
    """API keys for routes with `api_key: true` (usage plans: api.usage_plans)."""


@keys.command()
@click.argument("name")
@click.option("--plan", required=True, help="A usage plan of the stack (api.usage_plans).")
@url_option
def create(name: str, plan: str, url: str) -> None:
    """Create the key NAME in usage plan PLAN and print its value (shown only this once)."""
    client = ControlClient(url)
    answer = client.post_json(KEYS_PATH, {"name": name, "plan": plan})
    gateway = client.get_json("/_stackyard/status")["urls"]["gateway"]
    console = Console(highlight=False)
    console.print(f"created key [bold]{answer['name']}[/] in usage plan [bold]{answer['plan']}[/]")
    console.print("Store it now: it is not shown again.", style="yellow")
    click.echo(answer["key"])
    if answer.get("key_source") == "authorizer":
        console.print(
            "The stack takes keys from its Lambda authorizer (usageIdentifierKey).", markup=False
        )
    else:
        header = shlex.quote(f"x-api-key: {answer['key']}")
        console.print("Use it:", markup=False)
        console.print(f"  curl -H {header} {gateway}/", markup=False, soft_wrap=True)


@keys.command("list")
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw document.")
def list_keys(url: str, as_json: bool) -> None:
    """The keys (names, plans, prefixes; never the values)."""
    doc = ControlClient(url).get_json(KEYS_PATH)
    console = Console()
    if as_json:
        console.print_json(data=doc)
        return
    if not doc["keys"]:
        console.print("no API keys (create one: stackyard keys create NAME --plan PLAN)")
        return
    table = Table("name", "plan", "prefix", "created", "status", "revoked at")
    for key in doc["keys"]:
        status = "revoked" if key["revoked"] else "active"
        table.add_row(
            key["name"],
            key["plan"],
            key["prefix"] + "…",
            _when(key["created"]),
            status,
            _when(key["revoked"]),
        )
    console.print(table)


@keys.command()
@click.argument("name")
@url_option
def revoke(name: str, url: str) -> None:
    """Revoke the key NAME: requests with it are refused from now on."""
    answer = ControlClient(url).delete_json(_key_path(name))
    click.echo(f"revoked key {answer['name']} at {_when(answer['revoked'])}")


@keys.command()
@click.argument("name")
@url_option
def usage(name: str, url: str) -> None:
    """The quota use of the key NAME in the current period."""
    doc = ControlClient(url).get_json(_key_path(name) + "/usage")
    quota = doc["quota"]
    if quota is None:
        click.echo(f"{doc['name']} (plan {doc['plan']}): the plan has no quota")
        return
    click.echo(
        f"{doc['name']} (plan {doc['plan']}): {quota['used']} of {quota['limit']} requests this "
        f"{quota['period']} ({quota['remaining']} left, until {_when(quota['period_end'])})"
    )

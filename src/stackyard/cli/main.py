"""The ``stackyard`` command group."""

from __future__ import annotations

import click

from .. import __version__
from .deploy import deploy
from .functions import dead_letters, functions, invoke
from .inspect import logs, status
from .keys import keys
from .metrics import alarms, metrics
from .services import restart, scale
from .traces import trace, traces
from .up import up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackyard")
def cli() -> None:
    """Stackyard: API gateway, service discovery and monitoring for your stack, on your machine."""


cli.add_command(up)
cli.add_command(deploy)
cli.add_command(status)
cli.add_command(logs)
cli.add_command(restart)
cli.add_command(scale)
cli.add_command(invoke)
cli.add_command(functions)
cli.add_command(dead_letters)
cli.add_command(metrics)
cli.add_command(alarms)
cli.add_command(traces)
cli.add_command(trace)
cli.add_command(keys)


def main() -> None:
    cli()

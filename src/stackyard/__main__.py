"""``python -m stackyard`` is the ``stackyard`` command."""

from .cli.main import main

main()

"""``${env:NAME}`` and ``${env:NAME, default}`` substitution in stack-file strings."""

from __future__ import annotations

import re
from collections.abc import Mapping

_VARIABLE = re.compile(r"\$\{\s*([a-zA-Z]+):\s*([^,}\s]+)\s*(?:,\s*([^}]*?)\s*)?\}")


class VariableError(ValueError):
    """A variable that cannot be resolved (unknown source, or unset with no default)."""


def resolve(text: str, environ: Mapping[str, str]) -> str:
    """Replace every variable in ``text``; raise ``VariableError`` for the first bad one."""

    def substitute(match: re.Match[str]) -> str:
        source, name, default = match.group(1), match.group(2), match.group(3)
        if source != "env":
            raise VariableError(f"unknown variable source {source!r} in {match.group(0)!r}")
        if name in environ:
            return environ[name]
        if default is not None:
            return _unquote(default)
        raise VariableError(
            f"environment variable {name} is not set and {match.group(0)} has no default"
        )

    return _VARIABLE.sub(substitute, text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value

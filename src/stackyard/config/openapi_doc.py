"""An OpenAPI document being imported: its data with each value's line, and what was found.

:func:`read_document` parses a YAML or JSON file with line tracking (the stack loader's own
builder); :class:`OpenApiDocument` collects the import's problems (``file:line: field: message``
with the document's own line numbers) and warnings, resolves local ``$ref`` pointers and turns
a schema into a self-contained JSON schema (local references inlined, OpenAPI 3.0
``nullable`` spelled the JSON Schema way).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, Problem
from .loader import FieldPath, build, compose, line_of

_MAX_SCHEMA_DEPTH = 64


@dataclass
class OpenApiDocument:
    """The parsed document; ``problems`` and ``warnings`` grow while it is imported."""

    file: Path
    data: dict[str, Any]
    lines: Mapping[FieldPath, int]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    services: frozenset[str] = frozenset()  # the stack's, for http_proxy hosts
    functions: frozenset[str] = frozenset()  # the stack's, for authorizer uris

    @property
    def swagger2(self) -> bool:
        return "swagger" in self.data

    def problem(self, path: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.file, line_of(self.lines, path), dotted(path), message))

    def warn(self, path: FieldPath, message: str) -> None:
        line = line_of(self.lines, path)
        where = f"{self.file.name}:{line}" if line is not None else self.file.name
        self.warnings.append(f"{where}: {dotted(path)}: {message}")

    def unsupported(self, path: FieldPath) -> None:
        self.warn(path, "not supported yet, ignored")

    def deref(self, value: Any, path: FieldPath) -> tuple[Any, FieldPath]:
        """``value`` with a local ``$ref`` followed (chains too), and where it was found."""
        seen: set[str] = set()
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            ref = value["$ref"]
            target = self._pointer(ref)
            if target is None or ref in seen:
                self.problem((*path, "$ref"), f"cannot resolve {ref!r} (only local '#/...' refs)")
                return None, path
            seen.add(ref)
            value, path = target
        return value, path

    def _pointer(self, ref: str) -> tuple[Any, FieldPath] | None:
        if not ref.startswith("#/"):
            return None
        node: Any = self.data
        path: list[str | int] = []
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
                path.append(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                path.append(int(part))
            else:
                return None
        return node, tuple(path)

    def schema(self, value: Any, path: FieldPath) -> dict[str, Any]:
        """A self-contained JSON schema from an OpenAPI schema object."""
        out = self._inline(value, path, (), 0)
        return out if isinstance(out, dict) else {}

    def _inline(self, value: Any, path: FieldPath, refs: tuple[str, ...], depth: int) -> Any:
        if depth > _MAX_SCHEMA_DEPTH:
            self.warn(path, "schema nested too deeply; the rest is not checked")
            return {}
        if isinstance(value, list):
            return [self._inline(v, (*path, i), refs, depth + 1) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        ref = value.get("$ref")
        if isinstance(ref, str):
            if ref in refs:
                self.warn(path, f"recursive schema {ref!r}: the recursion is not checked")
                return {}
            target, target_path = self.deref({"$ref": ref}, path)
            return self._inline(target, target_path, (*refs, ref), depth + 1)
        out = {
            key: self._inline(v, (*path, key), refs, depth + 1)
            for key, v in value.items()
            if key != "nullable" and not key.startswith("x-")
        }
        if value.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out


def read_document(file: Path) -> OpenApiDocument:
    """Parses the YAML or JSON document at ``file``; ``ConfigError`` when it cannot be read."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc}")]) from exc
    try:
        builder = build(compose(text, file), file, None)
    except ConfigError:
        if file.suffix.lower() != ".json":
            raise
        try:  # JSON that YAML 1.1 refuses (tabs): plain data, no line numbers
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError([Problem(file, None, "", f"invalid JSON: {exc}")]) from exc
        if not isinstance(data, dict):
            raise ConfigError([Problem(file, 1, "", "the top level must be a mapping")]) from None
        return OpenApiDocument(file, data, {})
    return OpenApiDocument(file, builder.data, builder.lines, list(builder.problems))


def dotted(path: FieldPath) -> str:
    return ".".join(str(part) for part in path)

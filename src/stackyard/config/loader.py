"""Reads a stack file: YAML with line tracking, variable substitution, schema validation.

The loader never stops at the first problem: it collects every YAML, variable, schema and
reference error with its line so a user fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ConfigError, Problem
from .models import StackConfig
from .variables import VariableError, resolve

STACK_FILE_NAMES = ("stackyard.yml", "stackyard.yaml")
SERVERLESS_FILE_NAMES = ("serverless.yml", "serverless.yaml")

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedStack:
    """A validated stack and where it came from."""

    config: StackConfig
    file: Path
    warnings: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        """The folder relative paths in the stack are resolved against."""
        return self.file.parent


def find_stack_file(path: Path) -> Path:
    """``path`` itself if it is a file, else the stack file inside the folder ``path``."""
    if path.is_dir():
        for name in (*STACK_FILE_NAMES, *SERVERLESS_FILE_NAMES):
            candidate = path / name
            if candidate.is_file():
                return candidate
        raise ConfigError(
            [Problem(path, None, "", "no stackyard.yml (or serverless.yml) in this folder")]
        )
    if not path.exists():
        raise ConfigError([Problem(path, None, "", "no such file or folder")])
    return path


def load_stack(
    path: Path, environ: Mapping[str, str], options: Mapping[str, str] | None = None
) -> LoadedStack:
    """Load and validate the stack at ``path``: a ``stackyard.yml``, a ``serverless.yml``, or a
    folder holding one. ``options`` are the command line's (``stage``, ``region``)."""
    file = find_stack_file(path).resolve()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc}")]) from exc
    if file.name in SERVERLESS_FILE_NAMES:
        from .serverless import parse_serverless

        config, warnings = parse_serverless(text, file, environ, options or {})
        return LoadedStack(config, file, tuple(warnings))
    notes: list[str] = []
    return LoadedStack(parse_stack(text, file, environ, notes), file, tuple(notes))


def compose(text: str, file: Path) -> yaml.Node:
    """The YAML node tree of ``text``; ``ConfigError`` for invalid or empty YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, file)]) from exc
    if node is None:
        raise ConfigError([Problem(file, 1, "", "the file is empty")])
    return node


def build(node: yaml.Node, file: Path, environ: Mapping[str, str] | None) -> _Builder:
    """Plain data from a node tree with each value's line (``builder.data``, ``builder.lines``);
    ``${env:...}`` is substituted unless ``environ`` is None."""
    builder = _Builder(file, environ)
    try:
        builder.data = builder.build(node, ())
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, file)]) from exc
    if not isinstance(builder.data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping")])
    return builder


def validate(
    data: dict[str, Any], file: Path, lines: Mapping[FieldPath, int], problems: list[Problem]
) -> StackConfig:
    """``StackConfig`` from plain data, or ``ConfigError`` with ``problems`` + schema problems."""
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as exc:
        problems = problems + _schema_problems(exc, file, lines)
    if config is not None:
        problems = problems + _reference_problems(config, file, lines)
    if problems or config is None:
        problems.sort(key=lambda p: (p.line or 0, p.field))
        raise ConfigError(problems)
    return config


def parse_stack(
    text: str, file: Path, environ: Mapping[str, str], warnings: list[str] | None = None
) -> StackConfig:
    """Validate stack-file text; ``file`` names the source in errors and is where an
    ``api.openapi`` document is looked for (its warnings are appended to ``warnings``)."""
    from .openapi import merge_openapi

    builder = build(compose(text, file), file, environ)
    problems = list(builder.problems)
    notes = warnings if warnings is not None else []
    problems += merge_openapi(builder.data, file, builder.lines, notes)
    return validate(builder.data, file, builder.lines, problems)


class _Builder:
    """Turns a composed YAML node tree into plain data, remembering each value's line."""

    def __init__(self, file: Path, environ: Mapping[str, str] | None) -> None:
        self.file = file
        self.environ = environ
        self.data: Any = None
        self.lines: dict[FieldPath, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if node.tag.startswith("!") and not node.tag.startswith("!!"):
            return self._intrinsic(node, path)
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._constructor.construct_object(key_node, deep=True))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._constructor.construct_object(node, deep=True)
        if isinstance(value, str) and self.environ is not None:
            try:
                return resolve(value, self.environ)
            except VariableError as exc:
                self.problems.append(Problem(self.file, self.lines[path], _dotted(path), str(exc)))
        return value

    def _intrinsic(self, node: yaml.Node, path: FieldPath) -> Any:
        """A CloudFormation short form (serverless.yml ``resources``) as its long form:
        ``!Ref X`` → ``{"Ref": "X"}``, ``!GetAtt A.B`` → ``{"Fn::GetAtt": ["A", "B"]}``,
        ``!Sub ...`` → ``{"Fn::Sub": ...}`` and so on for every ``!Name``."""
        name = node.tag[1:]
        if isinstance(node, yaml.ScalarNode):
            value: Any = str(node.value)
        else:  # the same node read as a plain list or mapping
            tag = "tag:yaml.org,2002:" + ("seq" if isinstance(node, yaml.SequenceNode) else "map")
            plain = type(node)(tag, node.value, node.start_mark, node.end_mark)
            value = self.build(plain, path)
        if name == "Ref":
            return {"Ref": value}
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{name}": value}


def _yaml_problem(exc: yaml.YAMLError, file: Path) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    reason = getattr(exc, "problem", None) or str(exc)
    return Problem(file, line, "", f"invalid YAML: {reason}")


def line_of(lines: Mapping[FieldPath, int], path: FieldPath) -> int | None:
    """The line of ``path`` or of its nearest ancestor present in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


_FRIENDLY = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def _schema_problems(
    exc: ValidationError, file: Path, lines: Mapping[FieldPath, int]
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = tuple(part for part in error["loc"] if isinstance(part, str | int))
        message = _FRIENDLY.get(error["type"], error["msg"])
        message = message.removeprefix("Value error, ")
        problems.append(Problem(file, line_of(lines, path), _dotted(path), message))
    return problems


def _reference_problems(
    config: StackConfig, file: Path, lines: Mapping[FieldPath, int]
) -> list[Problem]:
    """Names a stack uses that it does not define (services, functions, authorizers)."""
    api = config.api
    known: dict[str, tuple[str, Collection[str]]] = {
        "service": ("service", config.services),
        "function": ("function", config.functions),
        "authorizer": ("authorizer", api.authorizers),
    }
    problems = []

    def check(path: FieldPath, value: str | None, field: str) -> None:
        kind, names = known[field]
        if value is not None and value not in names:
            problems.append(
                Problem(file, line_of(lines, path), _dotted(path), f"no {kind} named {value!r}")
            )

    for index, route in enumerate(api.routes):
        for field in ("service", "function", "authorizer"):
            check(("api", "routes", index, field), getattr(route, field), field)
    for name, function in config.functions.items():
        for index, event in enumerate(function.events):
            for kind, http in (("http", event.http), ("httpApi", event.http_api)):
                if http is not None:
                    path = ("functions", name, "events", index, kind, "authorizer")
                    check(path, http.authorizer, "authorizer")
    for name, authorizer in api.authorizers.items():
        if authorizer.type == "function":
            check(("api", "authorizers", name, "function"), authorizer.function, "function")
    problems += _uses_problems(config, file, lines)
    return problems


def _uses_problems(
    config: StackConfig, file: Path, lines: Mapping[FieldPath, int]
) -> list[Problem]:
    """``uses`` names a declared cache or database, and gives each environment name once."""
    problems = [
        Problem(file, line_of(lines, ("databases", name)), f"databases.{name}",
                f"{name!r} is both a cache and a database")
        for name in config.caches.keys() & config.databases.keys()
    ]  # fmt: skip
    users = [("services", n, s.uses) for n, s in config.services.items()]
    users += [("functions", n, f.uses) for n, f in config.functions.items()]
    for section, owner, uses in users:
        seen: dict[str, str] = {}
        for index, (name, env) in enumerate(uses.items()):
            path: FieldPath = (section, owner, "uses", name)
            path = path if path in lines else (section, owner, "uses", index)  # list form
            if name not in config.caches and name not in config.databases:
                message = f"no cache or database named {name!r}"
                problems.append(Problem(file, line_of(lines, path), _dotted(path), message))
                continue
            env = env or ("REDIS_URL" if name in config.caches else "DATABASE_URL")
            if env in seen:
                message = f"{name!r} and {seen[env]!r} both set {env}: name one, {{{name}: ENV}}"
                problems.append(Problem(file, line_of(lines, path), _dotted(path), message))
            seen[env] = name
    return problems


def _dotted(path: FieldPath) -> str:
    return ".".join(str(part) for part in path)

"""The validation step: required query parameters and headers, and a JSON body against a schema.

``RoutePolicy.validation`` (a :class:`~stackyard.config.api.ValidationConfig`) names the
query parameters and headers a request must carry (present and not empty) and a JSON schema
for the body: inline, or a ``.json``/``.yaml`` file relative to the stack folder
(``Gateway.root``). The schema's ``$schema`` picks the draft (4, 6, 7, 2019-09, 2020-12;
2020-12 when absent); ``format`` is checked. Schemas are compiled when the route table is
compiled (:meth:`Schemas.prepare`): a bad schema or a missing file is refused there
(``InvalidRoute``).

Failures answer 400, every problem listed in ``error.details`` (``path``: JSONPath of the
value in the body, or ``query.NAME`` / ``header.NAME``; ``message``):

- :class:`BadRequestParameters` (``BadRequestParameters``): a required parameter is missing;
- :class:`BadRequestBody` (``BadRequestBody``): the body is missing (POST, PUT, PATCH), is not
  JSON, or does not match the schema.

Only routes with a body schema buffer the body (up to the gateway's body limit, 413 beyond);
the next step receives the same bytes. GET, HEAD, DELETE and OPTIONS requests without a body
skip the body check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from jsonschema import validators
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from ..asgi import ASGIApp, Receive, Scope, Send
from ..config.api import ValidationConfig
from .body import read_body, replay
from .errors import GatewayError, InvalidRoute
from .table import RouteSpec

MAX_DETAILS = 100
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BadRequest(GatewayError):
    """A request that fails its route's validation; ``details`` lists every problem."""

    status = 400

    def __init__(self, details: list[dict[str, str]], message: str = "") -> None:
        self.details = details[:MAX_DETAILS]
        super().__init__(message)

    def body_fields(self) -> dict[str, object]:
        return {"details": self.details}


class BadRequestParameters(BadRequest):
    code = "BadRequestParameters"

    def default_message(self) -> str:
        return "missing required request parameters"


class BadRequestBody(BadRequest):
    code = "BadRequestBody"

    def default_message(self) -> str:
        return "invalid request body"


@dataclass(frozen=True)
class CompiledValidation:
    query: tuple[str, ...]
    headers: tuple[bytes, ...]
    schema: Validator | None


def _load_schema(source: dict[str, Any] | str, root: Path | None) -> Any:
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_absolute():
        path = (root or Path.cwd()) / path
    try:
        text = path.read_text()
        return yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InvalidRoute(f"validation schema {source!r}: {exc}") from exc


def compile_validation(config: ValidationConfig, root: Path | None) -> CompiledValidation:
    """Loads and checks the body schema; raises InvalidRoute for a bad one."""
    schema: Validator | None = None
    if config.body is not None:
        document = _load_schema(config.body, root)
        if not isinstance(document, dict):
            raise InvalidRoute(f"validation schema {config.body!r}: not a JSON schema")
        cls = validators.validator_for(document, default=validators.Draft202012Validator)
        try:
            cls.check_schema(document)
        except SchemaError as exc:
            raise InvalidRoute(f"validation schema: {exc.message}") from exc
        schema = cls(document, format_checker=cls.FORMAT_CHECKER)
    return CompiledValidation(
        query=tuple(config.query),
        headers=tuple(name.lower().encode("latin-1") for name in config.headers),
        schema=schema,
    )


class Schemas:
    """The compiled validations of the routes in the current table (by config identity)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self._compiled: dict[int, tuple[ValidationConfig, CompiledValidation]] = {}

    def prepare(self, routes: Iterable[RouteSpec]) -> None:
        """Compiles every route's validation (raises InvalidRoute and changes nothing on error)."""
        self.use(self.compile(routes))

    def use(self, compiled: dict[int, tuple[ValidationConfig, CompiledValidation]]) -> None:
        """Swaps in validations made by :meth:`compile`."""
        self._compiled = compiled

    def compile(
        self, routes: Iterable[RouteSpec]
    ) -> dict[int, tuple[ValidationConfig, CompiledValidation]]:
        """Every route's compiled validation (the current ones reused); raises InvalidRoute."""
        compiled: dict[int, tuple[ValidationConfig, CompiledValidation]] = {}
        for route in routes:
            config = route.policy.validation
            if config is not None:
                entry = self._compiled.get(id(config))
                if entry is None or entry[0] is not config:
                    try:
                        entry = (config, compile_validation(config, self.root))
                    except InvalidRoute as exc:
                        raise InvalidRoute(f"route {route.path}: {exc.message}") from exc
                compiled[id(config)] = entry
        return compiled

    def get(self, config: ValidationConfig) -> CompiledValidation:
        entry = self._compiled.get(id(config))
        if entry is not None and entry[0] is config:
            return entry[1]
        result = compile_validation(config, self.root)
        self._compiled[id(config)] = (config, result)
        return result


def missing_parameters(scope: Scope, compiled: CompiledValidation) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if compiled.query:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        for name in compiled.query:
            if not query.get(name):
                problems.append({"path": f"query.{name}", "message": "required, missing"})
    if compiled.headers:
        present = {name for name, value in scope["headers"] if value.strip()}
        for header in compiled.headers:
            if header not in present:
                name = header.decode("latin-1")
                problems.append({"path": f"header.{name}", "message": "required, missing"})
    return problems


def body_problems(body: bytes, schema: Validator) -> list[dict[str, str]]:
    """What is wrong with ``body`` for ``schema`` (empty when it is valid)."""
    if not body.strip():
        return [{"path": "$", "message": "a JSON body is required"}]
    try:
        document = json.loads(body)
    except RecursionError:
        return [{"path": "$", "message": "the body is nested too deeply"}]
    except ValueError as exc:
        return [{"path": "$", "message": f"the body is not JSON: {exc}"}]
    try:
        errors = sorted(schema.iter_errors(document), key=lambda e: list(map(str, e.path)))
        return [{"path": error.json_path, "message": error.message} for error in errors]
    except RecursionError:
        return [{"path": "$", "message": "the body is nested too deeply"}]


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class Validation:
    """The validation step (see the module docstring)."""

    def __init__(self, app: ASGIApp, schemas: Schemas, max_body_size: int) -> None:
        self.app = app
        self.schemas = schemas
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = scope["state"]["route"].route.policy.validation
        if config is None:
            await self.app(scope, receive, send)
            return
        compiled = self.schemas.get(config)
        problems = missing_parameters(scope, compiled)
        if problems:
            raise BadRequestParameters(problems)
        if compiled.schema is not None and (scope["method"] in _BODY_METHODS or _has_body(scope)):
            body = await read_body(scope, receive, self.max_body_size)
            problems = body_problems(body, compiled.schema)
            if problems:
                raise BadRequestBody(problems)
            receive = replay(body, receive)
        await self.app(scope, receive, send)

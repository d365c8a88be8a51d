"""Runs a Serverless Framework ``serverless.yml`` unchanged: its variables and its translation.

Variables: ``${self:path.to.key}``, ``${opt:stage}``/``${opt:region}``, ``${sls:stage}``,
``${sls:instanceId}``, ``${env:NAME}``, ``${aws:region}``, ``${aws:accountId}``, nested
(innermost first) and with defaults (``${opt:stage, 'dev'}``, ``${env:X, ${self:custom.x}}``).
A whole-string variable keeps the type of what it points to.

Translation: ``service`` → stack name, ``provider`` (runtime, stage, region, environment,
timeout, memorySize) and ``functions`` (handler, runtime, environment, timeout, memorySize,
events ``http``/``httpApi``/``schedule``/``stream``/``s3``, ``private``, ``authorizer``),
``provider.httpApi.authorizers`` (JWT and ``request``), ``provider.apiGateway``
(``usagePlan``, ``apiKeySourceType``) and ``resources.Resources`` (DynamoDB tables and S3
buckets, :mod:`.serverless_resources`) → :class:`StackConfig`. Every key Stackyard does not
implement yet is named in the warnings, never dropped silently.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, Problem
from .loader import FieldPath, build, compose, line_of, validate
from .models import StackConfig
from .s3_events import serverless_s3_event
from .serverless_resources import translate_resources

DEFAULT_STAGE = "dev"
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "000000000000"

_INNERMOST = re.compile(r"\$\{([^${}]*)\}")
_WHOLE = re.compile(r"^\$\{([^${}]*)\}$")
_MAX_ROUNDS = 50

_PROVIDER_KEYS = {"name", "runtime", "stage", "region", "environment", "timeout", "memorySize"}
_FUNCTION_KEYS = {
    "handler",
    "runtime",
    "environment",
    "timeout",
    "memorySize",
    "events",
    "name",
    "description",
    "reservedConcurrency",
    "maximumRetryAttempts",
    "maximumEventAge",
}
_TOP_KEYS = {
    "service",
    "provider",
    "functions",
    "custom",
    "frameworkVersion",
    "plugins",
    "package",
    "resources",
    "useDotenv",
    "variablesResolutionMode",
    "configValidationMode",
}
_NOT_FOR_RUNNING = {
    "frameworkVersion",
    "package",
    "variablesResolutionMode",
    "configValidationMode",
    "useDotenv",
    "custom",
    "description",
    "name",
}


class _Unresolvable(ValueError):
    pass


class Variables:
    """Resolves Serverless variables against the document, the options and the environment."""

    def __init__(
        self, doc: Mapping[str, Any], environ: Mapping[str, str], options: Mapping[str, str]
    ) -> None:
        self.doc = doc
        self.environ = environ
        provider = _mapping(doc.get("provider"))
        self.options = dict(options)
        self._provider = provider
        self._instance = uuid.uuid4().hex[:8]
        self._depth = 0

    def stage(self) -> str:
        return str(
            self.options.get("stage") or self._plain(self._provider.get("stage")) or DEFAULT_STAGE
        )

    def region(self) -> str:
        return str(
            self.options.get("region")
            or self._plain(self._provider.get("region"))
            or DEFAULT_REGION
        )

    def _plain(self, value: Any) -> Any:
        return self.resolve(value) if value is not None else None

    def resolve(self, value: Any) -> Any:
        """``value`` with every variable in it (recursively, for lists and mappings) resolved."""
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        self._depth += 1
        try:
            if self._depth > _MAX_ROUNDS:
                raise _Unresolvable("variables refer to each other in a cycle")
            return self._resolve_text(value)
        finally:
            self._depth -= 1

    def _resolve_text(self, text: str) -> Any:
        for _ in range(_MAX_ROUNDS):
            whole = _WHOLE.match(text)
            if whole:
                return self._reference(whole.group(1))
            match = _INNERMOST.search(text)
            if match is None:
                return text
            replacement = self._reference(match.group(1))
            if isinstance(replacement, dict | list):
                raise _Unresolvable(f"{match.group(0)} is not text and cannot be embedded")
            text = text[: match.start()] + _text(replacement) + text[match.end() :]
        raise _Unresolvable("too deeply nested variables")

    def _reference(self, body: str) -> Any:
        ref, default = _split_default(body)
        value = self._lookup(ref.strip())
        if value is None:
            if default is None:
                raise _Unresolvable(f"${{{body}}} has no value and no default")
            return self.resolve(_literal(default.strip()))
        return value

    def _lookup(self, ref: str) -> Any:
        source, _, key = ref.partition(":")
        key = key.strip()
        if not key and source and not _:
            return _literal(source)  # a plain default value reached as a reference
        if source == "self":
            return self.resolve(_dig(self.doc, key))
        if source == "env":
            return self.environ.get(key)
        if source == "opt":
            return {"stage": self.options.get("stage"), "region": self.options.get("region")}.get(
                key, self.options.get(key)
            )
        if source == "sls":
            if key == "stage":
                return self.stage()
            if key == "instanceId":
                return self._instance
            raise _Unresolvable(f"unknown ${{sls:{key}}}")
        if source == "aws":
            if key == "region":
                return self.region()
            if key == "accountId":
                return ACCOUNT_ID
            raise _Unresolvable(f"unknown ${{aws:{key}}}")
        raise _Unresolvable(f"variable source {source!r} is not supported (in ${{{ref}}})")


def _split_default(body: str) -> tuple[str, str | None]:
    depth = 0
    for index, char in enumerate(body):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            return body[:index], body[index + 1 :]
    return body, None


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def _dig(doc: Any, dotted: str) -> Any:
    value = doc
    for part in dotted.split(".") if dotted else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_serverless(
    text: str, file: Path, environ: Mapping[str, str], options: Mapping[str, str]
) -> tuple[StackConfig, list[str]]:
    """A :class:`StackConfig` from ``serverless.yml`` text, and the warnings for what is skipped."""
    builder = build(compose(text, file), file, None)
    raw: dict[str, Any] = builder.data
    variables = Variables(raw, environ, options)
    problems: list[Problem] = []
    resolved = _resolve_tree(variables, raw, (), file, builder.lines, problems)
    if problems:
        raise ConfigError(problems)
    warnings: list[str] = []
    data = _translate(resolved, variables, warnings)
    lines = {_to_stack_path(path): line for path, line in builder.lines.items()}
    config = validate(data, file, lines, problems)
    return config, warnings


def _resolve_tree(
    variables: Variables,
    value: Any,
    path: FieldPath,
    file: Path,
    lines: Mapping[FieldPath, int],
    problems: list[Problem],
) -> Any:
    if isinstance(value, dict):
        return {
            k: _resolve_tree(variables, v, (*path, k), file, lines, problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _resolve_tree(variables, v, (*path, i), file, lines, problems)
            for i, v in enumerate(value)
        ]
    try:
        return variables.resolve(value)
    except _Unresolvable as exc:
        field = ".".join(str(p) for p in path)
        problems.append(Problem(file, line_of(lines, path), field, str(exc)))
        return None


def _translate(doc: dict[str, Any], variables: Variables, warnings: list[str]) -> dict[str, Any]:
    service = doc.get("service")
    if isinstance(service, dict):
        service = service.get("name")
    provider = _mapping(doc.get("provider"))
    _warn_unknown("", doc, _TOP_KEYS, warnings)
    if doc.get("plugins"):
        warnings.append("plugins: not supported yet, ignored")
    _warn_unknown("provider.", provider, _PROVIDER_KEYS | {"httpApi", "apiGateway"}, warnings)
    http_api = _mapping(provider.get("httpApi"))
    for key in set(http_api) - {"cors", "authorizers"}:
        warnings.append(f"provider.httpApi.{key}: not supported yet, ignored")
    http_api_cors = _http_api_cors(http_api.get("cors"))
    api: dict[str, Any] = {}
    authorizers = {
        name: _authorizer(spec, f"provider.httpApi.authorizers.{name}", warnings)
        for name, spec in _mapping(http_api.get("authorizers")).items()
    }
    api_gateway = _mapping(provider.get("apiGateway"))
    for key in set(api_gateway) - {"apiKeys", "usagePlan", "apiKeySourceType"}:
        warnings.append(f"provider.apiGateway.{key}: not supported yet, ignored")
    plans = _usage_plans(api_gateway.get("usagePlan"))
    if api_gateway.get("apiKeys"):
        first = next(iter(plans), "default")
        warnings.append(
            "provider.apiGateway.apiKeys: keys are made with "
            f"`stackyard keys create NAME --plan {first}` (the value is printed once)"
        )
        plans = plans or {"default": {}}
    if plans:
        api["usage_plans"] = plans
    if str(api_gateway.get("apiKeySourceType", "")).upper() == "AUTHORIZER":
        api["key_source"] = "authorizer"
    env = _mapping(provider.get("environment"))
    functions: dict[str, Any] = {}
    raw_functions = _mapping(doc.get("functions"))
    for name, spec in raw_functions.items():
        if not isinstance(spec, dict):
            functions[name] = spec  # the schema reports it
            continue
        _warn_unknown(f"functions.{name}.", spec, _FUNCTION_KEYS, warnings)
        fn_env = _mapping(spec.get("environment"))
        function: dict[str, Any] = {
            "handler": spec.get("handler"),
            "runtime": _runtime(spec.get("runtime") or provider.get("runtime")),
            "timeout": spec.get("timeout", provider.get("timeout", 6)),
            "memory_mb": spec.get("memorySize", provider.get("memorySize", 1024)),
            "env": {**env, **fn_env},
            "events": [
                _event(e, f"functions.{name}.events", warnings, http_api_cors, doc.get("resources"))
                for e in spec.get("events") or []
            ],
        }
        if "maximumEventAge" in spec:
            function["max_event_age"] = spec["maximumEventAge"]
        if "maximumRetryAttempts" in spec:
            function["retries"] = spec["maximumRetryAttempts"]
        if "reservedConcurrency" in spec:
            function["concurrency"] = spec["reservedConcurrency"]
        function["events"] = [e for e in function["events"] if e is not None]
        functions[name] = function
    if authorizers:
        api["authorizers"] = {k: v for k, v in authorizers.items() if v is not None}
    out = {"name": service, "functions": functions, "stage": variables.stage()}
    if api:
        out["api"] = api
    declared = translate_resources(
        doc.get("resources"), str(service), variables.stage(), list(functions), warnings
    )
    if declared.tables:
        out["tables"] = declared.tables
    if declared.buckets:
        out["buckets"] = declared.buckets
    for name, events in declared.events.items():  # bucket notifications
        functions[name]["events"] += events
    return out


_IDENTITY = re.compile(r"^\$request\.(header|querystring)\.(.+)$", re.IGNORECASE)


def _identity_source(value: Any) -> Any:
    """``$request.header.Authorization`` → ``header.authorization``; ``querystring`` → ``query``."""
    if isinstance(value, list):
        return [_identity_source(v) for v in value]
    match = _IDENTITY.match(str(value))
    if match is None:
        return value  # the schema reports it
    where, name = match.groups()
    return f"header.{name.lower()}" if where.lower() == "header" else f"query.{name}"


def _authorizer(spec: Any, where: str, warnings: list[str]) -> dict[str, Any] | None:
    """A ``provider.httpApi.authorizers`` entry: JWT (``issuerUrl``, ``audience``; keys from
    ``<issuerUrl>/.well-known/jwks.json``) or a ``request`` authorizer function."""
    if not isinstance(spec, dict):
        return spec  # type: ignore[no-any-return]  # the schema reports it
    if spec.get("type") == "request":
        if spec.get("functionArn"):
            warnings.append(f"{where}.functionArn: only functionName is supported")
        out: dict[str, Any] = {
            "type": "function",
            "function": spec.get("functionName"),
            "ttl": spec.get("resultTtlInSeconds", 300),
            "response": "simple" if spec.get("enableSimpleResponses") else "iam",
            "payload_version": str(spec.get("payloadVersion", "2.0")),
        }
        if "identitySource" in spec:
            out["identity_source"] = _identity_source(spec["identitySource"])
        return out
    issuer = str(spec.get("issuerUrl", "")).rstrip("/")
    out = {"type": "jwt", "issuer": issuer, "jwks": f"{issuer}/.well-known/jwks.json"}
    if "audience" in spec:
        out["audience"] = spec["audience"]
    if "identitySource" in spec:
        out["identity_source"] = _identity_source(spec["identitySource"])
    return out


_PERIODS = {"DAY": "day", "WEEK": "week", "MONTH": "month"}


def _usage_plans(value: Any) -> dict[str, Any]:
    """``provider.apiGateway.usagePlan``: one plan (named ``default``) or a list of named ones."""
    if value is None:
        return {}
    named = value if isinstance(value, list) else [{"default": value}]
    plans: dict[str, Any] = {}
    for item in named:
        for name, spec in _mapping(item).items():
            spec = _mapping(spec)
            plan: dict[str, Any] = {}
            throttle = _mapping(spec.get("throttle"))
            if throttle:
                plan["throttle"] = {
                    "rate": throttle.get("rateLimit"),
                    "burst": throttle.get("burstLimit"),
                }
            quota = _mapping(spec.get("quota"))
            if quota:
                period = str(quota.get("period", "")).upper()
                plan["quota"] = {
                    "limit": quota.get("limit"),
                    "period": _PERIODS.get(period, period),
                }
            plans[str(name)] = plan
    return plans


def _http_api_cors(value: Any) -> Any:
    """``provider.httpApi.cors`` (true, or the framework's object) as a stack ``cors`` value."""
    if value is True or value is None or value is False:
        return {} if value else None
    if not isinstance(value, dict):
        return value  # the schema reports it
    out: dict[str, Any] = {
        "origins": value.get("allowedOrigins", ["*"]),
        "methods": value.get("allowedMethods", ["*"]),
        "credentials": bool(value.get("allowCredentials", False)),
        "expose_headers": value.get("exposedResponseHeaders", []),
    }
    if "allowedHeaders" in value:
        out["headers"] = value["allowedHeaders"]
    if "maxAge" in value:
        out["max_age"] = value["maxAge"]
    return out


def _rest_cors(value: Any) -> Any:
    """An ``http`` event's ``cors`` (true, or the framework's object) as a stack ``cors``."""
    if value is True:
        return {}
    if not isinstance(value, dict):
        return value
    origins = value.get("origins") or ([value["origin"]] if "origin" in value else ["*"])
    out: dict[str, Any] = {
        "origins": origins,
        "credentials": bool(value.get("allowCredentials", False)),
    }
    if "headers" in value:
        out["headers"] = value["headers"]
    if "maxAge" in value:
        out["max_age"] = value["maxAge"]
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _runtime(value: Any) -> str:
    text = str(value or "python3.11")
    if text.startswith("python"):
        return "python"
    if text.startswith("provided"):
        return "provided"
    return text  # the schema names what is allowed


def _event(
    event: Any,
    where: str,
    warnings: list[str],
    http_api_cors: Any,
    resources: Any = None,
) -> dict[str, Any] | None:
    if not isinstance(event, dict) or len(event) != 1:
        return event  # type: ignore[no-any-return]  # the schema reports it
    kind, spec = next(iter(event.items()))
    if kind == "http":
        if isinstance(spec, str):
            method, _, path = spec.strip().partition(" ")
            return {"http": {"method": method, "path": path.strip()}}
        if isinstance(spec, dict):
            for extra in set(spec) - {"path", "method", "cors", "private"}:
                warnings.append(f"{where}.http.{extra}: not supported yet, ignored")
            out = {"method": spec.get("method", "ANY"), "path": spec.get("path")}
            if spec.get("cors"):
                out["cors"] = _rest_cors(spec["cors"])
            if spec.get("private"):
                out["private"] = True
            return {"http": out}
    if kind == "httpApi":
        if isinstance(spec, dict):
            for extra in set(spec) - {"path", "method", "authorizer"}:
                warnings.append(f"{where}.httpApi.{extra}: not supported yet, ignored")
            authorizer = spec.get("authorizer")
            if spec.get("path") == "*" or (spec.get("method") == "*" and spec.get("path") is None):
                spec = {"method": "ANY", "path": "/{proxy+}", "default_route": True}
            else:
                spec = {"method": spec.get("method", "ANY"), "path": spec.get("path")}
            if isinstance(authorizer, str):
                authorizer = {"name": authorizer}
            if isinstance(authorizer, dict):
                if "name" not in authorizer:
                    warnings.append(f"{where}.httpApi.authorizer: only named authorizers")
                else:  # an unknown name is reported with its line by the loader
                    spec["authorizer"] = authorizer["name"]
                    spec["scopes"] = list(authorizer.get("scopes") or [])
        if spec == "*":
            spec = {"method": "ANY", "path": "/{proxy+}", "default_route": True}
        elif isinstance(spec, str):
            method, _, path = spec.strip().partition(" ")
            spec = {"method": method, "path": path.strip()}
        if http_api_cors is not None and isinstance(spec, dict):
            spec["cors"] = http_api_cors
        return {"httpApi": spec}
    if kind == "schedule":
        if isinstance(spec, dict):
            rate = spec.get("rate")
            if isinstance(rate, list):
                if len(rate) > 1:
                    warnings.append(f"{where}.schedule.rate: only the first expression is used")
                rate = rate[0] if rate else None
            out = {"rate": rate, "enabled": spec.get("enabled", True)}
            if spec.get("input") is not None:
                out["input"] = spec["input"]
            return {"schedule": out}
        return {"schedule": spec}
    if kind == "stream":
        return _stream_event(spec, where, warnings, resources)
    if kind == "s3":
        return serverless_s3_event(spec, where, warnings)
    warnings.append(f"{where}: event type {kind!r} not supported yet, ignored")
    return None


_STREAM_ARN = re.compile(r"^arn:aws:dynamodb:[^:]*:[^:]*:table/([^/]+)/stream/[^/]+$")


def _stream_event(
    spec: Any, where: str, warnings: list[str], resources: Any
) -> dict[str, Any] | None:
    """``- stream: ARN`` or ``- stream: {type: dynamodb, arn, batchSize, startingPosition}``;
    the ARN is a stream ARN or ``Fn::GetAtt: [TableResource, StreamArn]``."""
    if isinstance(spec, str):
        spec = {"type": "dynamodb", "arn": spec}
    if not isinstance(spec, dict):
        return {"stream": spec}  # the schema reports it
    if spec.get("type", "dynamodb") != "dynamodb":
        warnings.append(f"{where}.stream: type {spec.get('type')!r} not supported yet, ignored")
        return None
    table = _stream_table(spec.get("arn"), resources)
    if table is None:
        warnings.append(
            f"{where}.stream.arn: not a DynamoDB stream ARN Stackyard can resolve "
            f"({spec.get('arn')!r}), ignored"
        )
        return None
    for extra in set(spec) - {"type", "arn", "batchSize", "startingPosition", "enabled"}:
        warnings.append(f"{where}.stream.{extra}: not supported yet, ignored")
    out: dict[str, Any] = {"table": table}
    if "batchSize" in spec:
        out["batch_size"] = spec["batchSize"]
    if "startingPosition" in spec:
        out["starting_position"] = spec["startingPosition"]
    if "enabled" in spec:
        out["enabled"] = spec["enabled"]
    return {"stream": out}


def _stream_table(arn: Any, resources: Any) -> str | None:
    """The table a stream ARN names, or the table resource of ``Fn::GetAtt [Id, StreamArn]``."""
    if isinstance(arn, str):
        match = _STREAM_ARN.match(arn)
        return match.group(1) if match else None
    attribute = arn.get("Fn::GetAtt") if isinstance(arn, dict) and len(arn) == 1 else None
    if isinstance(attribute, str):
        attribute = attribute.split(".")
    if not isinstance(attribute, list) or len(attribute) != 2 or attribute[1] != "StreamArn":
        return None
    declared = resources.get("Resources") if isinstance(resources, dict) else None
    resource = declared.get(attribute[0]) if isinstance(declared, dict) else None
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::DynamoDB::Table":
        return None
    properties = resource.get("Properties")
    name = properties.get("TableName", attribute[0]) if isinstance(properties, dict) else None
    return name if isinstance(name, str) else None


def _warn_unknown(prefix: str, spec: Mapping[str, Any], known: set[str], out: list[str]) -> None:
    for key in spec:
        if key not in known and key not in _NOT_FOR_RUNNING:
            out.append(f"{prefix}{key}: not supported yet, ignored")


_STACK_FIELD = {"memorySize": "memory_mb", "environment": "env", "service": "name"}


def _to_stack_path(path: FieldPath) -> FieldPath:
    return tuple(_STACK_FIELD.get(p, p) if isinstance(p, str) else p for p in path)

"""The ``api:`` section of a stack: routes and the API-management policies applied to them.

Stage-wide defaults (``throttle``, ``cors``, ``gzip``, ``cache``), named ``authorizers`` and
``usage_plans``, per-stage variables, an imported ``openapi`` document, and the ``routes``
themselves, each with its integration (a service, a function or a mock answer) and its
policies (API key, authorizer and scopes, throttle, cache, transforms, validation).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
POLICY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_TEMPLATE_SEGMENT = re.compile(r"^(?:[^{}]*|\{[A-Za-z_][A-Za-z0-9_]*\+?\})$")
# where a value comes from in a request: header.NAME, query.NAME, path.NAME, context.NAME
_SOURCE = re.compile(r"^(?:header|query|path|context|stageVariables)\.[A-Za-z0-9_.$-]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def valid_template(value: str) -> str:
    """A route path template: ``/items/{id}``, a greedy ``{proxy+}`` only as the last segment."""
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    segments = value.strip("/").split("/") if value != "/" else []
    for index, segment in enumerate(segments):
        if not _TEMPLATE_SEGMENT.match(segment):
            raise ValueError(f"bad template segment {segment!r} (use {{name}} or {{name+}})")
        if segment.endswith("+}") and index != len(segments) - 1:
            raise ValueError("a greedy {name+} parameter must be the last segment")
    return value


def _sources(value: list[str]) -> list[str]:
    for source in value:
        if not _SOURCE.match(source):
            raise ValueError(
                f"{source!r}: expected header.NAME, query.NAME, path.NAME or context.NAME"
            )
    return value


Sources = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


# -- CORS ---------------------------------------------------------------------------------------


class CorsConfig(_Model):
    """Cross-origin access to routes; ``*`` allows any origin, method or header."""

    origins: list[str] = Field(default_factory=lambda: ["*"])
    methods: list[str] = Field(default_factory=lambda: ["*"])
    headers: list[str] | None = Field(default=None, description="default: API Gateway's list")
    expose_headers: list[str] = Field(default_factory=list)
    credentials: bool = False
    max_age: int | None = Field(default=None, ge=0, le=86400)

    @model_validator(mode="after")
    def _credentials_need_origins(self) -> CorsConfig:
        if self.credentials and "*" in self.origins:
            raise ValueError("credentials: true needs explicit origins, not '*'")
        return self


def cors_shorthand(value: object) -> object:
    """``cors: true`` means the permissive default policy; ``false`` none."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


OptionalCors = Annotated[CorsConfig | None, BeforeValidator(cors_shorthand)]


# -- throttling, quotas, usage plans ------------------------------------------------------------


class ThrottleConfig(_Model):
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class QuotaConfig(_Model):
    """At most ``limit`` requests per key in each calendar ``period`` (UTC)."""

    limit: int = Field(ge=1)
    period: Literal["day", "week", "month"]


class UsagePlanConfig(_Model):
    """``api.usage_plans.<name>``: what a key of this plan may do."""

    description: str = ""
    throttle: ThrottleConfig | None = None
    quota: QuotaConfig | None = None
    cache_invalidation: bool = Field(
        default=False, description="keys of this plan may send Cache-Control: max-age=0"
    )


# -- authorizers --------------------------------------------------------------------------------


_HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class JwtAuthorizerConfig(_Model):
    """Validates a bearer JWT: signature (HS256 ``secret`` or keys from a ``jwks`` file or URL),
    ``iss``, ``aud``, ``exp``/``nbf`` with ``leeway``."""

    type: Literal["jwt"]
    issuer: str | None = None
    audience: list[str] = Field(default_factory=list)
    jwks: str | None = Field(default=None, description="a JWKS file (relative to the stack) or URL")
    secret: str | None = Field(default=None, description="HS256 shared secret")
    algorithms: list[str] | None = Field(default=None, description="default: by key type")
    leeway: Seconds = 0.0
    identity_source: str = "header.authorization"

    @field_validator("audience", mode="before")
    @classmethod
    def _audience(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtAuthorizerConfig:
        if (self.jwks is None) == (self.secret is None):
            raise ValueError("a jwt authorizer has exactly one of jwks, secret")
        if self.algorithms is not None and "none" in {a.lower() for a in self.algorithms}:
            raise ValueError("algorithm 'none' is not allowed")
        if self.algorithms is not None:
            allowed = _HMAC_ALGORITHMS if self.secret is not None else _ASYMMETRIC_ALGORITHMS
            wrong = sorted(set(self.algorithms) - allowed) or ["(none given)"]
            if not allowed.issuperset(self.algorithms) or not self.algorithms:
                key = "a secret" if self.secret is not None else "JWKS keys"
                raise ValueError(f"{key} verify {', '.join(sorted(allowed))}, not {wrong}")
        _sources([self.identity_source])
        if not self.identity_source.startswith(("header.", "query.")):
            raise ValueError("a jwt authorizer reads its token from header.NAME or query.NAME")
        return self


class FunctionAuthorizerConfig(_Model):
    """A Lambda REQUEST authorizer: the function gets the request and answers allow/deny
    (``simple``: ``{"isAuthorized": ..., "context": {...}}``; ``iam``: a policy document)."""

    type: Literal["function"]
    function: str = Field(min_length=1)
    identity_source: Sources = Field(default_factory=lambda: ["header.authorization"])
    ttl: Seconds = Field(default=300.0, le=3600, description="result cache TTL; 0 = no cache")
    response: Literal["simple", "iam"] = "simple"
    payload_version: Literal["1.0", "2.0"] = "2.0"

    _check_sources = field_validator("identity_source")(classmethod(lambda cls, v: _sources(v)))


AuthorizerConfig = Annotated[
    JwtAuthorizerConfig | FunctionAuthorizerConfig, Field(discriminator="type")
]


# -- cache, compression, transforms, validation, mock -------------------------------------------


class CacheConfig(_Model):
    """A route's response cache: ``ttl`` seconds (≤ 3600), keyed by method + path + ``key``."""

    ttl: Seconds = Field(default=300.0, le=3600)
    key: Sources = Field(default_factory=list, description="query.NAME / header.NAME")
    methods: list[str] = Field(default_factory=lambda: ["GET"])

    _check_key = field_validator("key")(classmethod(lambda cls, v: _sources(v)))


def _cache_shorthand(value: object) -> object:
    """``cache: true`` caches with the defaults; ``cache: 60`` with a TTL."""
    if value is True:
        return {}
    if value is False:
        return None
    if isinstance(value, int | float | str):
        return {"ttl": value}
    return value


class ApiCacheConfig(_Model):
    """The response cache's memory bound (LRU) and largest entry."""

    max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    max_entry_bytes: int = Field(default=1024 * 1024, ge=0)


class GzipConfig(_Model):
    """Compress answers of at least ``min_size`` bytes for clients that accept gzip."""

    min_size: int = Field(default=1024, ge=0)
    level: int = Field(default=5, ge=1, le=9)


def _gzip_shorthand(value: object) -> object:
    if value is True:
        return {}
    if value is False:
        return None
    return value


class ParamOps(_Model):
    """Set (add or replace) and remove headers or query parameters; values may use
    ``$context.*``, ``$stageVariables.*`` and ``$request.*`` references."""

    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class RequestTransformConfig(_Model):
    headers: ParamOps = Field(default_factory=ParamOps)
    query: ParamOps = Field(default_factory=ParamOps)
    path: str | None = Field(default=None, description="rewrite template, e.g. /v2/items/{id}")
    body: str | None = Field(default=None, description="a JSON mapping template")


class ResponseTransformConfig(_Model):
    headers: ParamOps = Field(default_factory=ParamOps)
    body: str | None = None


class TransformConfig(_Model):
    request: RequestTransformConfig = Field(default_factory=RequestTransformConfig)
    response: ResponseTransformConfig = Field(default_factory=ResponseTransformConfig)


class ValidationConfig(_Model):
    """Checked before the integration: ``body`` (a JSON schema, inline or a file name) and the
    required ``query`` parameters and ``headers``; failures answer 400 with the details."""

    body: dict[str, Any] | str | None = None
    query: list[str] = Field(default_factory=list)
    headers: list[str] = Field(default_factory=list)


class MockConfig(_Model):
    """An answer the gateway gives itself (OpenAPI ``mock`` integrations, stubs)."""

    status: int = Field(default=200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | dict[str, Any] | list[Any] | None = None


# -- routes and the api section -----------------------------------------------------------------


class RouteConfig(_Model):
    """One gateway route: a path template and methods sent to a service, a function, a mock
    or a bucket served as a static site (``index`` document for folders, ``error`` document
    with status 404 for missing keys)."""

    path: str
    methods: list[str] = Field(default_factory=lambda: ["ANY"])
    service: str | None = None
    function: str | None = None
    mock: MockConfig | None = None
    bucket: str | None = None
    index: str = "index.html"
    error: str | None = None
    strip_prefix: str | bool = False
    timeout: Seconds = 29.0
    retries: int = Field(default=2, ge=0, le=10)
    balancer: Literal["round_robin", "least_request"] = "round_robin"
    payload_version: Literal["1.0", "2.0"] = "2.0"
    api_key: bool = False
    authorizer: str | None = None
    scopes: list[str] = Field(default_factory=list)
    throttle: ThrottleConfig | None = None
    cache: Annotated[CacheConfig | None, BeforeValidator(_cache_shorthand)] = None
    transform: TransformConfig | None = None
    validate_: ValidationConfig | None = Field(default=None, alias="validate")
    description: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("path")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        return valid_template(value)

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            upper = [str(m).upper() for m in value]
            for method in upper:
                if method != "ANY" and method not in HTTP_METHODS:
                    raise ValueError(f"unknown HTTP method {method!r}")
            return upper
        return value

    @model_validator(mode="after")
    def _one_integration(self) -> RouteConfig:
        integrations = (self.service, self.function, self.mock, self.bucket)
        if sum(x is not None for x in integrations) != 1:
            raise ValueError("a route has exactly one of service, function, mock, bucket")
        if self.scopes and self.authorizer is None:
            raise ValueError("scopes need an authorizer")
        return self

    @property
    def prefix_to_strip(self) -> str:
        """The literal prefix removed before proxying ('' when none)."""
        if self.strip_prefix is True:
            return self.path.split("{", 1)[0].rstrip("/")
        if self.strip_prefix is False:
            return ""
        return self.strip_prefix.rstrip("/")


class AccessLogConfig(_Model):
    """Where the gateway's access log goes: ``file`` (``logs/gateway-access.log`` in the data
    dir) and ``central`` (the log store, searchable with ``stackyard logs``; off by default:
    full-text indexing every request costs the gateway a large share of its throughput)."""

    file: bool = True
    central: bool = False


class StageConfig(_Model):
    """``api.stages.<name>``: the stage's variables and throttle. The node's own stage
    (``stackyard up --stage``) is served at the root; a stage with a ``path`` (``/prod``) or a
    ``host`` (``prod.localhost``) is served there as well, beside it."""

    variables: dict[str, str] = Field(default_factory=dict)
    throttle: ThrottleConfig | None = None
    path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")
    host: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
    description: str = ""

    @field_validator("host")
    @classmethod
    def _host_lower(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None


class ApiConfig(_Model):
    openapi: str | None = Field(default=None, description="an OpenAPI 3 / Swagger 2 file")
    throttle: ThrottleConfig | None = None
    cors: OptionalCors = None
    gzip: Annotated[GzipConfig | None, BeforeValidator(_gzip_shorthand)] = None
    cache: ApiCacheConfig = Field(default_factory=ApiCacheConfig)
    key_source: Literal["header", "authorizer"] = "header"
    access_log: AccessLogConfig = Field(default_factory=AccessLogConfig)
    authorizers: dict[str, AuthorizerConfig] = Field(default_factory=dict)
    usage_plans: dict[str, UsagePlanConfig] = Field(default_factory=dict)
    stages: dict[str, StageConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)

    @field_validator("authorizers", "usage_plans", "stages")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(POLICY_NAME_PATTERN, name):
                raise ValueError(f"name {name!r}: letters, digits, '.', '-' and '_'")
        return value

"""The stack schema, version 1: what a ``stackyard.yml`` may say, validated by pydantic v2.

Every model forbids unknown keys, so a typo is an error with its line rather than a silent
default. Durations accept seconds or Go-style strings (``10s``, ``1m30s``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from .durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TEMPLATE_SEGMENT = re.compile(r"^(?:[^{}]*|\{[A-Za-z_][A-Za-z0-9_]*\+?\})$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthConfig(_Model):
    """How the registry decides that an instance may take traffic."""

    http: str | None = Field(default=None, description="path probed with GET, e.g. /health")
    tcp: bool = False
    ttl: Seconds | None = Field(default=None, description="the service must report within this")
    interval: Seconds = 1.0
    timeout: Seconds = 1.0
    healthy_threshold: int = Field(default=1, ge=1)
    unhealthy_threshold: int = Field(default=2, ge=1)
    deregister_after: Seconds | None = None

    @field_validator("http")
    @classmethod
    def _http_is_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be a path starting with '/'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> HealthConfig:
        kinds = [self.http is not None, self.tcp, self.ttl is not None]
        if sum(kinds) > 1:
            raise ValueError("choose one of http, tcp, ttl")
        if self.interval <= 0:
            raise ValueError("interval must be greater than 0")
        return self

    @property
    def kind(self) -> Literal["http", "tcp", "ttl"]:
        if self.ttl is not None:
            return "ttl"
        if self.tcp:
            return "tcp"
        return "http"


class ServiceConfig(_Model):
    """A long-running process the supervisor keeps ``replicas`` copies of."""

    command: str = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    replicas: int = Field(default=1, ge=0, le=64)
    health: HealthConfig = Field(default_factory=lambda: HealthConfig(tcp=True))
    stop_grace: Seconds = 5.0

    @field_validator("env", mode="before")
    @classmethod
    def _env_as_strings(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                str(k): ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value


class RouteConfig(_Model):
    """One gateway route: a path template and methods sent to a service."""

    path: str
    methods: list[str] = Field(default_factory=lambda: ["ANY"])
    service: str
    strip_prefix: str | bool = False
    timeout: Seconds = 29.0
    retries: int = Field(default=2, ge=0, le=10)
    balancer: Literal["round_robin", "least_request"] = "round_robin"

    @field_validator("path")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        segments = value.strip("/").split("/") if value != "/" else []
        for index, segment in enumerate(segments):
            if not _TEMPLATE_SEGMENT.match(segment):
                raise ValueError(f"bad template segment {segment!r} (use {{name}} or {{name+}})")
            if segment.endswith("+}") and index != len(segments) - 1:
                raise ValueError("a greedy {name+} parameter must be the last segment")
        return value

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

    @property
    def prefix_to_strip(self) -> str:
        """The literal prefix removed before proxying ('' when none)."""
        if self.strip_prefix is True:
            return self.path.split("{", 1)[0].rstrip("/")
        if self.strip_prefix is False:
            return ""
        return self.strip_prefix.rstrip("/")


class ApiConfig(_Model):
    routes: list[RouteConfig] = Field(default_factory=list)


class StackConfig(_Model):
    """A whole stack file."""

    version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    api: ApiConfig = Field(default_factory=ApiConfig)

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(
                    f"service name {name!r}: lowercase letters, digits and '-', starting a letter"
                )
        return value

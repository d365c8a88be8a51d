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

from .api import ApiConfig, CorsConfig, cors_shorthand, valid_template
from .durations import parse_duration
from .s3_events import S3EventConfig

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
FUNCTION_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"  # as Lambda allows
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _uses(value: object) -> object:
    """``uses: [cache, db]`` or ``uses: {cache: MY_REDIS}``: resource name -> env name (None:
    the default, ``REDIS_URL`` for a cache and ``DATABASE_URL`` for a database)."""
    if isinstance(value, list):
        return {name: None for name in value}
    if isinstance(value, dict):
        for env in value.values():
            if env is not None and not (isinstance(env, str) and re.match(ENV_NAME_PATTERN, env)):
                raise ValueError(f"{env!r} is no environment variable name")
    return value


Uses = Annotated[dict[str, str | None], BeforeValidator(_uses)]


class ServiceConfig(_Model):
    """A long-running process the supervisor keeps ``replicas`` copies of."""

    command: str = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    replicas: int = Field(default=1, ge=0, le=64)
    health: HealthConfig = Field(default_factory=lambda: HealthConfig(tcp=True))
    stop_grace: Seconds = 5.0
    uses: Uses = Field(default_factory=dict, description="caches and databases it connects to")

    @field_validator("env", mode="before")
    @classmethod
    def _env_as_strings(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                str(k): ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value


class HttpEventConfig(_Model):
    """An API Gateway route to a function: ``http`` = REST API (payload 1.0),
    ``httpApi`` = HTTP API (payload 2.0)."""

    path: str
    method: str = "ANY"
    default_route: bool = Field(default=False, description="HTTP API $default route ('*')")
    cors: Annotated[CorsConfig | None, BeforeValidator(cors_shorthand)] = None
    private: bool = Field(default=False, description="needs an API key (x-api-key)")
    authorizer: str | None = Field(default=None, description="a name in api.authorizers")
    scopes: list[str] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return valid_template(value if value.startswith("/") else f"/{value}")

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: object) -> object:
        if isinstance(value, str):
            method = "ANY" if value.strip() == "*" else value.strip().upper()
            if method != "ANY" and method not in HTTP_METHODS:
                raise ValueError(f"unknown HTTP method {value!r}")
            return method
        return value


class ScheduleEventConfig(_Model):
    """``rate(5 minutes)`` or an AWS 6-field ``cron(...)`` expression."""

    rate: str
    enabled: bool = True
    input: dict[str, object] | None = None

    @field_validator("rate")
    @classmethod
    def _expression(cls, value: str) -> str:
        text = value.strip()
        if not (text.startswith("rate(") or text.startswith("cron(")) or not text.endswith(")"):
            raise ValueError("expected rate(N unit) or cron(min hour day month weekday year)")
        return text


class StreamEventConfig(_Model):
    """``stream``: the function gets the DynamoDB Streams records of a table with a stream."""

    table: str = Field(min_length=1)
    batch_size: int = Field(default=100, ge=1, le=10000)
    starting_position: Literal["LATEST", "TRIM_HORIZON"] = "LATEST"
    enabled: bool = True


class FunctionEventConfig(_Model):
    """One trigger of a function; exactly one key is set."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    http: HttpEventConfig | None = None
    http_api: HttpEventConfig | None = Field(default=None, alias="httpApi")
    schedule: ScheduleEventConfig | None = None
    stream: StreamEventConfig | None = None
    s3: S3EventConfig | None = None

    @field_validator("http", "http_api", mode="before")
    @classmethod
    def _http_shorthand(cls, value: object) -> object:
        # serverless.yml shorthand: "GET /path" (or "*" for the default route)
        if isinstance(value, str):
            if value.strip() == "*":
                return {"method": "ANY", "path": "/{proxy+}", "default_route": True}
            method, _, path = value.strip().partition(" ")
            return {"method": method, "path": path.strip()}
        return value

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, value: object) -> object:
        return {"rate": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> FunctionEventConfig:
        kinds = (self.http, self.http_api, self.schedule, self.stream, self.s3)
        if sum(x is not None for x in kinds) != 1:
            raise ValueError("an event has exactly one of http, httpApi, schedule, stream, s3")
        return self


class FunctionConfig(_Model):
    """A Lambda-style function run in warm worker processes."""

    handler: str = Field(min_length=1, description="module.fn or path/module.fn")
    runtime: Literal["python", "provided"] = "python"
    timeout: Seconds = 3.0
    memory_mb: int = Field(default=128, ge=64, le=10240)
    concurrency: int = Field(default=10, ge=1, le=1000)
    warm: int = Field(default=1, ge=0, le=1000)
    retries: int = Field(default=2, ge=0, le=2, description="retries of async invocations")
    max_event_age: Seconds = Field(
        default=21600.0, ge=60, le=21600, description="async events older than this are dropped"
    )
    env: dict[str, str] = Field(default_factory=dict)
    events: list[FunctionEventConfig] = Field(default_factory=list)
    uses: Uses = Field(default_factory=dict, description="caches and databases it connects to")

    _env_as_strings = field_validator("env", mode="before")(
        ServiceConfig._env_as_strings.__func__  # type: ignore[attr-defined]
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_range(cls, value: float) -> float:
        if not 0 < value <= 900:
            raise ValueError("must be between 0 and 900 seconds")
        return value

    @model_validator(mode="after")
    def _warm_within_concurrency(self) -> FunctionConfig:
        if self.warm > self.concurrency:
            raise ValueError(f"warm ({self.warm}) cannot exceed concurrency ({self.concurrency})")
        return self


class TracingConfig(_Model):
    """Which requests without a caller's sampling decision the gateway traces, by a rule
    shaped like X-Ray's: the first ``reservoir`` new traces of each second, then
    ``sample_ratio`` of the others (``sample_ratio: 1`` traces every request)."""

    sample_ratio: float = Field(default=0.05, ge=0.0, le=1.0)
    reservoir: int = Field(default=100, ge=0, le=1_000_000)


BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"  # S3's bucket naming rules


class BucketConfig(_Model):
    """A bucket the node creates at ``up`` (and keeps, with its objects, across restarts)."""

    region: str | None = Field(default=None, description="LocationConstraint; the node's region")


RESOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"


class CacheConfig(_Model):
    """``caches.<name>``: a Redis the node runs (data in ``<data dir>/caches/<name>/``) or,
    with ``url``, one that runs elsewhere."""

    engine: Literal["redis"] = "redis"
    url: str | None = Field(default=None, pattern=r"^rediss?://\S+$")


class DatabaseConfig(_Model):
    """``databases.<name>``: a PostgreSQL the node runs (data in
    ``<data dir>/databases/<name>/``, a database named ``<name>``) or, with ``url``, one that
    runs elsewhere."""

    engine: Literal["postgres"] = "postgres"
    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://\S+$")


def _resources(value: object) -> object:
    if isinstance(value, dict):
        for name in value:
            if not isinstance(name, str) or not re.match(RESOURCE_NAME_PATTERN, name):
                raise ValueError(
                    f"name {name!r}: lowercase letters, digits, '-' and '_', starting with a letter"
                )
        return {name: {} if settings is None else settings for name, settings in value.items()}
    return value


ALARM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_STATISTIC_ALIASES = {
    "Sum": "sum",
    "SampleCount": "count",
    "Average": "avg",
    "Minimum": "min",
    "Maximum": "max",
}


def _statistic(value: object) -> object:
    return _STATISTIC_ALIASES.get(value, value) if isinstance(value, str) else value


class AlarmActionConfig(_Model):
    """What to do when an alarm changes state: POST JSON to ``webhook``, or ``log: true``."""

    webhook: str | None = Field(default=None, pattern=r"^https?://\S+$")
    log: bool = False

    @model_validator(mode="after")
    def _one(self) -> AlarmActionConfig:
        if (self.webhook is None) == (not self.log):
            raise ValueError("an action is either {webhook: URL} or {log: true}")
        return self


class AlarmConfig(_Model):
    """``alarms.<name>``: a CloudWatch-style alarm on a metric (M of N periods breaching)."""

    metric: str = Field(min_length=1)
    dimensions: dict[str, str] = Field(default_factory=dict, description="label subset")
    statistic: Annotated[
        Literal["sum", "count", "avg", "min", "max", "p50", "p90", "p99"],
        BeforeValidator(_statistic),
    ] = "avg"
    comparison: Literal[
        "GreaterThanThreshold",
        "GreaterThanOrEqualToThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
    ]
    threshold: float
    period: Seconds = Field(default=60.0, description="seconds, a multiple of 10")
    evaluation_periods: int = Field(default=1, ge=1, le=100)
    datapoints_to_alarm: int | None = Field(default=None, ge=1, description="default: N")
    treat_missing_data: Literal["missing", "notBreaching", "breaching", "ignore"] = "missing"
    actions: list[AlarmActionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> AlarmConfig:
        if self.period < 10 or self.period % 10:
            raise ValueError(f"period ({self.period:g}s) must be a multiple of 10 seconds")
        if self.datapoints_to_alarm is not None and (
            self.datapoints_to_alarm > self.evaluation_periods
        ):
            raise ValueError("datapoints_to_alarm cannot exceed evaluation_periods")
        return self

    @property
    def required(self) -> int:
        """M: breaching datapoints (of the last ``evaluation_periods``) that raise the alarm."""
        return self.datapoints_to_alarm or self.evaluation_periods


TABLE_NAME_PATTERN = r"^[a-zA-Z0-9_.-]{3,255}$"  # as DynamoDB allows


class TableIndexConfig(_Model):
    """A secondary index of a declared table: global, or ``local`` (same hash key as the table,
    so only ``range_key`` is given). ``projection``: ``all``, ``keys_only`` or a list of the
    non-key attributes to include."""

    hash_key: str | None = None
    range_key: str | None = None
    local: bool = False
    projection: Literal["all", "keys_only"] | list[str] = "all"

    @model_validator(mode="after")
    def _keys(self) -> TableIndexConfig:
        if self.local and (self.range_key is None or self.hash_key is not None):
            raise ValueError("a local index has a range_key and the table's hash key")
        if not self.local and self.hash_key is None:
            raise ValueError("a global index needs a hash_key")
        return self


class TableConfig(_Model):
    """``tables.<name>``: a DynamoDB table created at ``up`` (and kept, with its items, across
    restarts). ``attributes`` gives the types (S, N, B) of key attributes; unnamed ones are S."""

    hash_key: str = Field(min_length=1)
    range_key: str | None = None
    attributes: dict[str, Literal["S", "N", "B"]] = Field(default_factory=dict)
    indexes: dict[str, TableIndexConfig] = Field(default_factory=dict)
    ttl: str | None = Field(default=None, description="attribute holding the expiry time")
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST"
    stream: Literal["new_image", "old_image", "new_and_old_images", "keys_only"] | None = Field(
        default=None, description="the table's DynamoDB stream and what its records hold"
    )

    @model_validator(mode="after")
    def _check(self) -> TableConfig:
        if self.range_key is None and any(i.local for i in self.indexes.values()):
            raise ValueError("local indexes need a table with a range_key")
        keys = {self.hash_key, self.range_key}
        for index in self.indexes.values():
            keys |= {index.hash_key, index.range_key}
        unused = set(self.attributes) - keys
        if unused:
            raise ValueError(f"attributes that are no key: {', '.join(sorted(unused))}")
        for name in self.indexes:
            if not re.match(TABLE_NAME_PATTERN, name):
                raise ValueError(f"index name {name!r}: letters, digits, '_', '-', '.' (3-255)")
        return self


class TableStorageConfig(_Model):
    """``storage.tables``: where tables and items live — ``sqlite`` (a file in the data dir, the
    default) or ``postgres`` at ``url``, in the PostgreSQL schema ``schema_name``; nodes given
    the same database and schema share their tables."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    url: str | None = None
    schema_name: str = Field(default="stackyard", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^postgres(ql)?://\S*$", value):
            raise ValueError("a postgresql://[user[:password]@]host[:port]/database URL")
        return value

    @model_validator(mode="after")
    def _url(self) -> TableStorageConfig:
        if (self.backend == "postgres") != (self.url is not None):
            raise ValueError("url is given with backend postgres, and only then")
        return self


class StorageConfig(_Model):
    """``storage``: the backends of the storage components."""

    tables: TableStorageConfig = Field(default_factory=TableStorageConfig)


class StackConfig(_Model):
    """A whole stack file."""

    version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    stage: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    functions: dict[str, FunctionConfig] = Field(default_factory=dict)
    api: ApiConfig = Field(default_factory=ApiConfig)
    alarms: dict[str, AlarmConfig] = Field(default_factory=dict)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    tables: dict[str, TableConfig] = Field(default_factory=dict)
    buckets: dict[str, BucketConfig] = Field(default_factory=dict)
    caches: Annotated[dict[str, CacheConfig], BeforeValidator(_resources)] = Field(
        default_factory=dict
    )
    databases: Annotated[dict[str, DatabaseConfig], BeforeValidator(_resources)] = Field(
        default_factory=dict
    )
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(
                    f"name {name!r}: lowercase letters, digits and '-', starting with a letter"
                )
        return value

    @field_validator("functions")
    @classmethod
    def _function_names(cls, value: dict[str, FunctionConfig]) -> dict[str, FunctionConfig]:
        for name in value:
            if not re.match(FUNCTION_NAME_PATTERN, name):
                raise ValueError(f"function name {name!r}: letters, digits, '-' and '_'")
        return value

    @field_validator("buckets", mode="before")
    @classmethod
    def _bucket_names(cls, value: object) -> object:
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str) or not re.match(BUCKET_NAME_PATTERN, name):
                    raise ValueError(
                        f"bucket name {name!r}: 3-63 lowercase letters, digits, '.' and '-'"
                    )
            return {name: {} if settings is None else settings for name, settings in value.items()}
        return value

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, TableConfig]) -> dict[str, TableConfig]:
        for name in value:
            if not re.match(TABLE_NAME_PATTERN, name):
                raise ValueError(f"table name {name!r}: letters, digits, '_', '-', '.' (3-255)")
        return value

    @field_validator("alarms")
    @classmethod
    def _alarm_names(cls, value: dict[str, AlarmConfig]) -> dict[str, AlarmConfig]:
        for name in value:
            if not re.match(ALARM_NAME_PATTERN, name):
                raise ValueError(f"alarm name {name!r}: letters, digits, '.', '-' and '_'")
        return value

"""The ``s3`` function event: a bucket's object notifications delivered to a function.

stackyard.yml and serverless.yml say it the same way (the Serverless Framework's form)::

    events:
      - s3: photos                                  # every ObjectCreated event of ``photos``
      - s3:
          bucket: photos
          event: s3:ObjectRemoved:*
          rules: [{prefix: uploads/}, {suffix: .jpg}]
          existing: true                            # the node does not create the bucket

A bucket an ``s3`` event names is created at ``up`` (as the framework creates it) unless
``existing: true``. :func:`serverless_s3_event` translates the serverless.yml entry, naming what
Stackyard ignores in the warnings.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

S3_EVENTS = (
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
)
"""The event types a notification may name (S3's names of the object created and removed
events; ``Post`` and ``DeleteMarkerCreated`` never fire on a node: it has no browser-form POST
uploads and no versioning)."""

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's rules, as buckets:
_KEYS = {"bucket", "event", "rules", "existing"}


class S3RuleConfig(BaseModel):
    """One key name filter rule: ``{prefix: uploads/}`` or ``{suffix: .jpg}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str | None = Field(default=None, max_length=1024)
    suffix: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _one(self) -> S3RuleConfig:
        if (self.prefix is None) == (self.suffix is None):
            raise ValueError("a rule is either {prefix: ...} or {suffix: ...}")
        return self


class S3EventConfig(BaseModel):
    """``s3``: the function gets the S3 event records of a bucket's object writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    event: str = "s3:ObjectCreated:*"
    rules: list[S3RuleConfig] = Field(default_factory=list)
    existing: bool = Field(default=False, description="the bucket is not created at up")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"bucket": value} if isinstance(value, str) else value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET_NAME.match(value) or ".." in value:
            raise ValueError(f"bucket name {value!r}: 3-63 lowercase letters, digits, '.' and '-'")
        return value

    @field_validator("event")
    @classmethod
    def _event(cls, value: str) -> str:
        if value not in S3_EVENTS:
            raise ValueError(f"unknown event {value!r}; one of: {', '.join(S3_EVENTS)}")
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[S3RuleConfig]) -> list[S3RuleConfig]:
        if sum(rule.prefix is not None for rule in value) > 1:
            raise ValueError("at most one prefix rule")
        if sum(rule.suffix is not None for rule in value) > 1:
            raise ValueError("at most one suffix rule")
        return value

    @property
    def prefix(self) -> str:
        return next((rule.prefix for rule in self.rules if rule.prefix is not None), "")

    @property
    def suffix(self) -> str:
        return next((rule.suffix for rule in self.rules if rule.suffix is not None), "")


def serverless_s3_event(spec: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    """A serverless.yml ``- s3: ...`` entry as a stack event (the schema checks the values)."""
    if not isinstance(spec, dict):
        return {"s3": spec}
    for extra in sorted(set(spec) - _KEYS):
        if extra == "forceDeploy":
            warnings.append(f"{where}.s3.forceDeploy: nothing to deploy on a node, ignored")
        else:
            warnings.append(f"{where}.s3.{extra}: not supported yet, ignored")
    return {"s3": {key: value for key, value in spec.items() if key in _KEYS}}

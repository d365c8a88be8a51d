"""The S3 event notification record a function receives (``{"Records": [record]}``).

The shape is S3's event message structure, version 2.1: ``eventVersion``, ``eventSource``
(``aws:s3``), ``awsRegion``, ``eventTime`` (ISO-8601 with milliseconds and ``Z``),
``eventName`` (the event type without ``s3:``, e.g. ``ObjectCreated:Put``), ``userIdentity``,
``requestParameters.sourceIPAddress``, ``responseElements`` (the write's ``x-amz-request-id``
and ``x-amz-id-2``) and ``s3`` (schema version ``1.0``, the notification's
``configurationId``, the bucket's name, owner and ARN, and the object). The object's ``key`` is
URL-encoded as S3 encodes it (form encoding: a space is ``+``; ``/`` is kept), so handlers
decode it with ``urllib.parse.unquote_plus``. ``ObjectRemoved`` records carry no ``size`` and no
``eTag``. ``sequencer`` is an upper-case hexadecimal string, the same length for every event,
that grows with every event of the node: of two events for one key, the later write has the
greater sequencer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

OWNER_ID = "stackyard"
"""The principal that owns every bucket of a node (as ListBuckets names the owner)."""


@dataclass(frozen=True)
class S3Change:
    """One object change to report: the event type (``ObjectCreated:Put``, ...), the object
    (``size``/``etag`` None for a removal) and the write that made it."""

    event: str
    bucket: str
    key: str
    size: int | None
    etag: str | None
    sequencer: str
    time: float
    request_id: str
    source_ip: str
    principal: str


def iso_millis(epoch: float) -> str:
    """``1970-01-01T00:00:00.000Z``."""
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"


def encoded_key(key: str) -> str:
    """The key as an S3 event writes it: ``red flower.jpg`` → ``red+flower.jpg``."""
    return quote_plus(key, safe="/")


def s3_record(change: S3Change, *, region: str, configuration_id: str) -> dict[str, Any]:
    """The record of ``change`` for the notification ``configuration_id``."""
    obj: dict[str, Any] = {"key": encoded_key(change.key)}
    if change.size is not None:
        obj["size"] = change.size
    if change.etag is not None:
        obj["eTag"] = change.etag
    obj["sequencer"] = change.sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": iso_millis(change.time),
        "eventName": change.event,
        "userIdentity": {"principalId": change.principal},
        "requestParameters": {"sourceIPAddress": change.source_ip},
        "responseElements": {
            "x-amz-request-id": change.request_id,
            "x-amz-id-2": change.request_id,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": change.bucket,
                "ownerIdentity": {"principalId": OWNER_ID},
                "arn": f"arn:aws:s3:::{change.bucket}",
            },
            "object": obj,
        },
    }

"""The DynamoDB Streams record of one write (the shape Lambda receives in ``Records``).

``eventName`` is INSERT (no old item), REMOVE (no new item) or MODIFY; a write that changes
nothing makes no record, as in DynamoDB. The ``dynamodb`` part carries ``Keys`` always and
``NewImage``/``OldImage`` as the table's ``StreamViewType`` asks.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..tables.schema import TableSchema
from ..tables.values import Item

VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


def stream_arn(schema: TableSchema) -> str:
    return f"{schema.arn}/stream/{schema.stream_label}"


def stream_created(schema: TableSchema) -> float:
    """When the table's current stream was turned on (with the table: its creation)."""
    return schema.stream_created if schema.stream_created is not None else schema.created


def shard_id(schema: TableSchema) -> str:
    """The shard of the table's current stream (a stream turned on again has a new one)."""
    return f"shardId-{int(stream_created(schema) * 1000):020d}-{schema.table_id[:8]}"


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a table as the DynamoDB Streams API describes it: the table's current
    stream (``disabled`` None) or an earlier one, kept for the log's retention after it was
    turned off or replaced (``disabled``: when)."""

    table: str
    label: str
    arn: str
    shard: str
    view: str
    created: float
    hash_key: str
    range_key: str | None
    disabled: float | None = None

    @classmethod
    def of(cls, schema: TableSchema) -> StreamInfo:
        """The table's current stream (the table must have one)."""
        return cls(
            schema.name,
            schema.stream_label,
            stream_arn(schema),
            shard_id(schema),
            view_type(schema) or "NEW_AND_OLD_IMAGES",
            stream_created(schema),
            schema.hash_key,
            schema.range_key,
        )


def ended_stream(before: TableSchema, after: TableSchema) -> StreamInfo | None:
    """The stream of ``before`` if ``after`` (the same table changed) no longer has it: turned
    off, or replaced by a new one (turned on again or with another view type)."""
    if not before.stream or (after.stream and after.stream_label == before.stream_label):
        return None
    return StreamInfo.of(before)


def view_type(schema: TableSchema) -> str | None:
    if not schema.stream:
        return None
    value = str(schema.stream.get("StreamViewType") or "NEW_AND_OLD_IMAGES")
    return value if value in VIEW_TYPES else "NEW_AND_OLD_IMAGES"


def change_record(schema: TableSchema, old: Item | None, new: Item | None) -> dict[str, Any] | None:
    """The record of replacing ``old`` by ``new`` (without ``SequenceNumber``, given when
    logged), or None when the table has no stream or nothing changed."""
    view = view_type(schema)
    if view is None or old == new or (old is None and new is None):
        return None
    if old is None:
        name = "INSERT"
    elif new is None:
        name = "REMOVE"
    else:
        name = "MODIFY"
    source = new if new is not None else old
    assert source is not None
    keys = {k: source[k] for k in schema.key_names if k in source}
    data: dict[str, Any] = {"ApproximateCreationDateTime": float(int(time.time())), "Keys": keys}
    if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        data["NewImage"] = new
    if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        data["OldImage"] = old
    data["SizeBytes"] = len(json.dumps(data, separators=(",", ":")))
    data["StreamViewType"] = view
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": schema.region,
        "dynamodb": data,
        "eventSourceARN": stream_arn(schema),
    }


def sequence_number(seq: int) -> str:
    """DynamoDB's sequence numbers are decimal strings that grow; ours are the log's row ids."""
    return f"{seq:021d}"

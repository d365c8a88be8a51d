"""DynamoDB semantics on top of a :class:`.store.TableStore`: tables and single-item operations.

The engine is synchronous and runs every call on the component's one worker thread, so each
operation's read-check-write sequence is atomic without locks. Reads of ranges (Query, Scan),
batches and transactions are in :mod:`.reads` and :mod:`.writes`; they use the helpers here
(:meth:`Engine.table`, :meth:`Engine.write`, :func:`condition_check`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import ConditionFailed, TableInUse, TableNotFound, ValidationError
from .evaluate import matches, project
from .parser import Placeholders, parse_condition, parse_projection, parse_update
from .schema import TableSchema, check_table_name, schema_from_request
from .store import Key, TableStore
from .update import apply_update, check_overlaps
from .values import MAX_ITEM_SIZE, Item, check_item, item_size

Body = dict[str, Any]
TTL_MAX_AGE = 5 * 365 * 86400  # DynamoDB leaves items expired more than five years ago alone
# ItemCount/TableSizeBytes: counted on every DescribeTable while counting is quick; a table whose
# count takes longer keeps its figures this long (DynamoDB itself updates them every ~6 hours)
SLOW_STATS_S = 0.05
STATS_MAX_AGE_S = 60.0


def returned(body: Body, allowed: tuple[str, ...]) -> str:
    value = body.get("ReturnValues") or "NONE"
    if value not in allowed:
        raise ValidationError(f"Return values set to invalid value: {value}")
    return str(value)


def projection_of(body: Body, placeholders: Placeholders) -> list[Any] | None:
    if body.get("ProjectionExpression") is not None:
        if body.get("AttributesToGet") is not None:
            raise ValidationError(
                "Can not use both expression and non-expression parameters in the same request: "
                "Non-expression parameters: {AttributesToGet} Expression parameters: "
                "{ProjectionExpression}"
            )
        paths = parse_projection(body["ProjectionExpression"], placeholders)
        check_overlaps(paths, "ProjectionExpression")
        return paths
    names = body.get("AttributesToGet")
    if names is not None:
        return parse_projection(
            ",".join(f"#a{i}" for i in range(len(names))),
            Placeholders({f"#a{i}": n for i, n in enumerate(names)}),
        )
    return None


def condition_check(body: Body, placeholders: Placeholders) -> Callable[[Item | None], None]:
    """A check that raises ConditionFailed when the item does not satisfy ConditionExpression."""
    text = body.get("ConditionExpression")
    if body.get("Expected") is not None:
        raise ValidationError("The Expected parameter is not supported; use ConditionExpression")
    node = parse_condition(text, placeholders, "ConditionExpression") if text is not None else None
    give_old = body.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"

    def check(item: Item | None) -> None:
        if node is not None and not matches(item or {}, node):
            raise ConditionFailed(item if give_old else None)

    return check


class Engine:
    def __init__(self, store: TableStore, region: str = "us-east-1") -> None:
        self.store = store
        self.region = region
        self.tables: dict[str, tuple[int, TableSchema]] = {}
        # called inside every write's transaction (the stream log, see storage.streams)
        self.on_write: Callable[[TableSchema, Item | None, Item | None], None] | None = None
        # called before a write to several tables with streams, in its transaction (the
        # stream log takes their append locks in one order)
        self.before_writes: Callable[[Sequence[TableSchema]], None] | None = None
        # called with a table before and after a change of its stream, in the change's
        # transaction (the stream log keeps a stream turned off or replaced)
        self.on_stream_change: Callable[[TableSchema, TableSchema], None] | None = None
        self._slow_stats: dict[int, tuple[float, tuple[int, int]]] = {}  # id -> (when, stats)

    def open(self) -> None:
        self.store.open()
        self.tables = self.store.load_tables()

    def close(self) -> None:
        self.store.close()

    def table(self, name: object) -> tuple[int, TableSchema]:
        if not isinstance(name, str) or name not in self.tables:
            raise TableNotFound(
                f"Requested resource not found: Table: {name} not found"
                if isinstance(name, str)
                else "Requested resource not found"
            )
        return self.tables[name]

    # -- writes shared by every operation ----------------------------------------------------

    def write(
        self, table_id: int, schema: TableSchema, key: Key, old: Item | None, new: Item | None
    ) -> None:
        """Replace ``old`` by ``new`` (None: delete) with the index entries and expiry time."""
        new_indexes = {}
        size = 0
        if new is not None:
            size = item_size(new)
            if size > MAX_ITEM_SIZE:
                raise ValidationError("Item size has exceeded the maximum allowed size")
            new_indexes = schema.index_keys(new)
        old_indexes = schema.index_keys(old) if old is not None else {}
        with self.store.atomic():
            if self.on_write is not None and schema.stream is not None:
                self.on_write(schema, old, new)
            for name, index_key in old_indexes.items():
                if new_indexes.get(name) != index_key:
                    self.store.delete_index(table_id, name, index_key, key)
            if new is None:
                self.store.delete(table_id, key)
                return
            for name, index_key in new_indexes.items():
                if old_indexes.get(name) != index_key:
                    self.store.put_index(table_id, name, index_key, key)
            self.store.put(table_id, key, new, size, expiry(schema, new))

    def prepare_writes(self, schemas: Iterable[TableSchema]) -> None:
        """Before writing to the tables of ``schemas`` in one transaction: when more than one
        has a stream, let the stream log take their locks at once, in its own order."""
        streamed = {schema.name: schema for schema in schemas if schema.stream is not None}
        if self.before_writes is not None and len(streamed) > 1:
            self.before_writes([streamed[name] for name in sorted(streamed)])

    # -- tables ----------------------------------------------------------------------------

    def create_table(self, body: Body) -> Body:
        schema = schema_from_request(body, self.region)
        if schema.name in self.tables:
            raise TableInUse(f"Table already exists: {schema.name}")
        with self.store.atomic():
            table_id = self.store.create_table(schema)
        self.tables[schema.name] = (table_id, schema)
        return {"TableDescription": schema.describe()}

    def describe_table(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        count, size = self.stats(table_id)
        return {"Table": schema.describe(count, size)}

    def stats(self, table_id: int) -> tuple[int, int]:
        """(item count, size in bytes): exact for a table counted quickly, else a recent count."""
        now = time.monotonic()
        kept = self._slow_stats.get(table_id)
        if kept is not None and now - kept[0] < STATS_MAX_AGE_S:
            return kept[1]
        stats = self.store.stats(table_id)
        if time.monotonic() - now > SLOW_STATS_S:
            self._slow_stats[table_id] = (now, stats)
        else:
            self._slow_stats.pop(table_id, None)
        return stats

    def delete_table(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        count, size = self.stats(table_id)
        self._slow_stats.pop(table_id, None)
        self.store.drop_table(table_id)
        del self.tables[schema.name]
        return {"TableDescription": schema.describe(count, size, status="DELETING")}

    def list_tables(self, body: Body) -> Body:
        limit = body.get("Limit", 100)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ValidationError(
                f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                "constraint: Member must have value less than or equal to 100"
            )
        start = body.get("ExclusiveStartTableName")
        names = sorted(n for n in self.tables if start is None or n > start)
        out: Body = {"TableNames": names[:limit]}
        if len(names) > limit:
            out["LastEvaluatedTableName"] = names[limit - 1]
        return out

    def update_time_to_live(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        spec = body.get("TimeToLiveSpecification")
        if not isinstance(spec, dict) or not isinstance(spec.get("AttributeName"), str):
            raise ValidationError("TimeToLiveSpecification needs Enabled and AttributeName")
        enabled, attribute = bool(spec.get("Enabled")), spec["AttributeName"]
        if enabled and schema.ttl_attribute is not None:
            raise ValidationError("TimeToLive is already enabled")
        if not enabled and schema.ttl_attribute is None:
            raise ValidationError("TimeToLive is already disabled")
        if not enabled and attribute != schema.ttl_attribute:
            raise ValidationError("TimeToLive attribute name does not match the enabled one")
        self.set_ttl(table_id, schema, attribute if enabled else None)
        return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}

    def set_ttl(self, table_id: int, schema: TableSchema, attribute: str | None) -> TableSchema:
        """Store the TTL attribute and (re)compute every item's expiry time."""
        schema = schema.with_changes(ttl_attribute=attribute)
        with self.store.atomic():
            self.store.save_table(table_id, schema)
            for row in self.store.scan(table_id, None, 0, 1, None):
                key = schema.encoded_key(row.item)
                self.store.set_expiry(table_id, key, expiry(schema, row.item))
        self.tables[schema.name] = (table_id, schema)
        return schema

    def set_stream(
        self, table_id: int, schema: TableSchema, stream: dict[str, Any] | None
    ) -> TableSchema:
        """Turn the table's stream on (``StreamSpecification``) or off (None)."""
        before, schema = schema, schema.with_stream(stream)
        with self.store.atomic():
            self.store.save_table(table_id, schema)
            self.stream_changed(before, schema)
        self.tables[schema.name] = (table_id, schema)
        return schema

    def stream_changed(self, before: TableSchema, after: TableSchema) -> None:
        """Tell the stream log that the table ``before`` is now ``after`` (in the transaction)."""
        if self.on_stream_change is not None and before.stream != after.stream:
            self.on_stream_change(before, after)

    def describe_time_to_live(self, body: Body) -> Body:
        _, schema = self.table(body.get("TableName"))
        if schema.ttl_attribute is None:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {
            "TimeToLiveDescription": {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": schema.ttl_attribute,
            }
        }

    def sweep_expired(self, now: float | None = None, limit: int = 500) -> int:
        """Delete items whose TTL time has passed; returns how many."""
        now = time.time() if now is None else now
        found = [
            (table_id, schema, self.store.expired(table_id, now, now - TTL_MAX_AGE, limit))
            for _, (table_id, schema) in sorted(self.tables.items())
            if schema.ttl_attribute is not None
        ]
        with self.store.atomic():
            self.prepare_writes(schema for _, schema, items in found if items)
            for table_id, schema, items in found:
                for item in items:
                    self.write(table_id, schema, schema.encoded_key(item), item, None)
        return sum(len(items) for *_, items in found)

    # -- single items ----------------------------------------------------------------------

    def put_item(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        item = check_item(body.get("Item"))
        key = schema.encoded_key(item)
        values = returned(body, ("NONE", "ALL_OLD"))
        placeholders = Placeholders(
            body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
        )
        check = condition_check(body, placeholders)
        placeholders.check_all_used()
        old = self.store.get(table_id, key)
        check(old)
        self.write(table_id, schema, key, old, item)
        return {"Attributes": old} if values == "ALL_OLD" and old else {}

    def get_item(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        key = schema.check_key(body.get("Key"))
        placeholders = Placeholders(body.get("ExpressionAttributeNames"))
        paths = projection_of(body, placeholders)
        placeholders.check_all_used()
        item = self.store.get(table_id, key)
        if item is None:
            return {}
        return {"Item": project(item, paths) if paths is not None else item}

    def delete_item(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        key = schema.check_key(body.get("Key"))
        values = returned(body, ("NONE", "ALL_OLD"))
        placeholders = Placeholders(
            body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
        )
        check = condition_check(body, placeholders)
        placeholders.check_all_used()
        old = self.store.get(table_id, key)
        check(old)
        if old is not None:
            self.write(table_id, schema, key, old, None)
        return {"Attributes": old} if values == "ALL_OLD" and old else {}

    def update_item(self, body: Body) -> Body:
        table_id, schema = self.table(body.get("TableName"))
        key_item = body.get("Key")
        key = schema.check_key(key_item)
        assert isinstance(key_item, dict)
        prepared = prepare_update(schema, body)
        old = self.store.get(table_id, key)
        new, answer = prepared(old, key_item)
        self.write(table_id, schema, key, old, new)
        return answer


def prepare_update(
    schema: TableSchema, body: Body
) -> Callable[[Item | None, Item], tuple[Item, Body]]:
    """Checks an UpdateItem request; returns the step that turns the old item into the new one
    and the answer (used by UpdateItem and by TransactWriteItems' Update)."""
    values = returned(body, ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"))
    placeholders = Placeholders(
        body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
    )
    if body.get("AttributeUpdates") is not None:
        raise ValidationError(
            "The AttributeUpdates parameter is not supported; use UpdateExpression"
        )
    text = body.get("UpdateExpression")
    update = parse_update(text, placeholders) if text is not None else None
    check = condition_check(body, placeholders)
    placeholders.check_all_used()
    paths = update.paths() if update is not None else []
    check_overlaps(paths, "UpdateExpression")
    for path in paths:
        if path.elements[0] in schema.key_names:
            raise ValidationError(
                f"One or more parameter values were invalid: Cannot update attribute "
                f"{path.elements[0]}. This attribute is part of the key"
            )

    def step(old: Item | None, key: Item) -> tuple[Item, Body]:
        check(old)
        base = old if old is not None else dict(key)
        new = apply_update(base, update) if update is not None else base
        if values == "NONE":
            return new, {}
        if values == "ALL_OLD":
            attributes = old or {}
        elif values == "ALL_NEW":
            attributes = new
        else:
            source = (old or {}) if values == "UPDATED_OLD" else new
            attributes = project(source, paths)
        return new, {"Attributes": attributes} if attributes else {}

    return step


def expiry(schema: TableSchema, item: Item) -> float | None:
    """The item's TTL time in epoch seconds, if its table has TTL and the attribute is a number."""
    if schema.ttl_attribute is None:
        return None
    value = item.get(schema.ttl_attribute)
    if value is None or "N" not in value:
        return None
    try:
        return float(value["N"])
    except (ValueError, OverflowError):
        return None


__all__ = ["Engine", "check_table_name", "condition_check", "prepare_update", "projection_of"]

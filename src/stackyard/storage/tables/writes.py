"""BatchWriteItem, TransactWriteItems and UpdateTable.

A batch is checked whole first (tables, keys, duplicates, at most 25 requests) and then written
in one store transaction, so ``UnprocessedItems`` is always empty. A transaction reads every
item it touches, checks every condition, and writes only if all pass; otherwise it raises
``TransactionCanceled`` with one reason per action (``None`` for those that would have passed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .engine import Body, Engine, condition_check, prepare_update
from .errors import (
    ConditionFailed,
    TableNotFound,
    TablesError,
    TransactionCanceled,
    ValidationError,
)
from .parser import Placeholders
from .schema import (
    IndexSchema,
    TableSchema,
    parse_attribute_definitions,
    parse_index,
    parse_throughput,
)
from .store import Key
from .values import Item, check_item

MAX_BATCH_WRITE = 25
MAX_TRANSACT = 100
# how a transaction's action turns the old item into the new one (None: no item)
Step = Callable[[Item | None], Item | None]


class Writes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def batch_write_item(self, body: Body) -> Body:
        requests = body.get("RequestItems")
        if not isinstance(requests, dict) or not requests:
            raise ValidationError("RequestItems must be a non-empty map")
        plans: list[tuple[int, TableSchema, Key, Item | None]] = []
        for name, entries in requests.items():
            table_id, schema = self.engine.table(name)
            if not isinstance(entries, list) or not entries:
                raise ValidationError("Every table in RequestItems needs a non-empty list")
            keys = set()
            for entry in entries:
                put = entry.get("PutRequest") if isinstance(entry, dict) else None
                delete = entry.get("DeleteRequest") if isinstance(entry, dict) else None
                if (put is None) == (delete is None):
                    raise ValidationError("Every request is a PutRequest or a DeleteRequest")
                if put is not None:
                    item = check_item(put.get("Item"))
                    key = schema.encoded_key(item)
                    schema.index_keys(item)
                else:
                    item = None
                    key = schema.check_key(delete.get("Key") if isinstance(delete, dict) else None)
                if key in keys:
                    raise ValidationError("Provided list of item keys contains duplicates")
                keys.add(key)
                plans.append((table_id, schema, key, item))
        if len(plans) > MAX_BATCH_WRITE:
            raise ValidationError(
                "1 validation error detected: Value at 'requestItems' failed to satisfy "
                "constraint: Map value must satisfy constraint: [Member must have length less "
                "than or equal to 25, Member must have length greater than or equal to 1]"
            )
        store = self.engine.store
        with store.atomic():
            self.engine.prepare_writes(schema for _, schema, _, _ in plans)
            for table_id, schema, key, item in plans:
                old = store.get(table_id, key)
                if item is not None or old is not None:
                    self.engine.write(table_id, schema, key, old, item)
        return {"UnprocessedItems": {}}

    def transact_write_items(self, body: Body) -> Body:
        actions = body.get("TransactItems")
        if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_TRANSACT:
            raise ValidationError("TransactItems must hold between 1 and 100 actions")
        plans = [self._plan(action) for action in actions]
        targets = [(p[0], p[2]) for p in plans]
        if len(set(targets)) != len(targets):
            raise ValidationError(
                "Transaction request cannot include multiple operations on one item"
            )
        store = self.engine.store
        with store.atomic():
            olds = [store.get(table_id, key) for table_id, _, key, _ in plans]
            news: list[Item | None] = []
            reasons: list[dict[str, Any]] = []
            for (_, _, _, step), old in zip(plans, olds, strict=True):
                try:
                    news.append(step(old))
                    reasons.append({"Code": "None"})
                except ConditionFailed as exc:
                    news.append(None)
                    reason: dict[str, Any] = {
                        "Code": "ConditionalCheckFailed",
                        "Message": "The conditional request failed",
                    }
                    if exc.item is not None:
                        reason["Item"] = exc.item
                    reasons.append(reason)
                except TablesError as exc:
                    news.append(None)
                    reasons.append({"Code": "ValidationError", "Message": exc.message})
            if any(r["Code"] != "None" for r in reasons):
                raise TransactionCanceled(reasons)
            self.engine.prepare_writes(
                schema
                for (_, schema, _, _), action in zip(plans, actions, strict=True)
                if "ConditionCheck" not in action
            )
            for (table_id, schema, key, _), old, new, action in zip(
                plans, olds, news, actions, strict=True
            ):
                if "ConditionCheck" in action or (new is None and old is None):
                    continue
                self.engine.write(table_id, schema, key, old, new)
        return {}

    def _plan(self, action: object) -> tuple[int, TableSchema, Key, Step]:
        if not isinstance(action, dict) or len(action) != 1:
            raise ValidationError(
                "Every TransactWriteItems action has exactly one of "
                "ConditionCheck, Put, Delete, Update"
            )
        kind, request = next(iter(action.items()))
        if kind not in ("ConditionCheck", "Put", "Delete", "Update") or not isinstance(
            request, dict
        ):
            raise ValidationError(f"Unknown TransactWriteItems action {kind}")
        table_id, schema = self.engine.table(request.get("TableName"))
        if kind == "Update":
            key_item = request.get("Key")
            key = schema.check_key(key_item)
            assert isinstance(key_item, dict)
            prepared = prepare_update(schema, {**request, "ReturnValues": "NONE"})
            return table_id, schema, key, lambda old: prepared(old, key_item)[0]
        placeholders = Placeholders(
            request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues")
        )
        check = condition_check(request, placeholders)
        placeholders.check_all_used()
        if kind == "Put":
            item = check_item(request.get("Item"))
            key = schema.encoded_key(item)

            def put(old: Item | None) -> Item | None:
                check(old)
                return item

            return table_id, schema, key, put
        key = schema.check_key(request.get("Key"))
        if kind == "ConditionCheck" and request.get("ConditionExpression") is None:
            raise ValidationError("A ConditionCheck needs a ConditionExpression")

        def keep_or_delete(old: Item | None) -> Item | None:
            check(old)
            return old if kind == "ConditionCheck" else None

        return table_id, schema, key, keep_or_delete

    # -- UpdateTable -----------------------------------------------------------------------------

    def update_table(self, body: Body) -> Body:
        table_id, schema = self.engine.table(body.get("TableName"))
        changes: dict[str, Any] = {}
        billing = body.get("BillingMode") or schema.billing_mode
        if billing not in ("PROVISIONED", "PAY_PER_REQUEST"):
            raise ValidationError(f"Unknown BillingMode {billing!r}")
        changes["billing_mode"] = billing
        if body.get("ProvisionedThroughput") is not None or billing != schema.billing_mode:
            changes["throughput"] = parse_throughput(body.get("ProvisionedThroughput"), billing)
        attributes = dict(schema.attributes)
        if body.get("AttributeDefinitions") is not None:
            for name, kind in parse_attribute_definitions(body["AttributeDefinitions"]).items():
                if attributes.get(name, kind) != kind:
                    raise ValidationError(f"Cannot change the type of attribute {name}")
                attributes[name] = kind
        indexes = list(schema.indexes)
        created: list[IndexSchema] = []
        dropped: list[str] = []
        for update in body.get("GlobalSecondaryIndexUpdates") or []:
            if "Create" in update:
                index = parse_index(update["Create"], False, billing)
                if schema.index(index.name) or index.name in [i.name for i in created]:
                    raise ValidationError(
                        f"One or more parameter values were invalid: Index {index.name} "
                        "already exists"
                    )
                created.append(index)
                indexes.append(index)
            elif "Delete" in update:
                name = update["Delete"].get("IndexName")
                existing = schema.index(name)
                if existing is None or existing.local:
                    raise TableNotFound(f"Requested resource not found: Index: {name} not found")
                dropped.append(name)
                indexes = [i for i in indexes if i.name != name]
            elif "Update" not in update:
                raise ValidationError(
                    "GlobalSecondaryIndexUpdates entries are Create, Update or Delete"
                )
        used = {n for i in indexes for n in (i.hash_key, i.range_key) if n} | set(schema.key_names)
        attributes = {n: t for n, t in attributes.items() if n in used}
        missing = used - set(attributes)
        if missing:
            raise ValidationError(
                "One or more parameter values were invalid: Some index key attributes are not "
                f"defined in AttributeDefinitions. Keys: [{', '.join(sorted(missing))}]"
            )
        before = schema
        if body.get("StreamSpecification") is not None:
            stream = body["StreamSpecification"]
            current = schema.stream
            if current and stream.get("StreamEnabled"):  # as DynamoDB: enable needs none on
                raise ValidationError(
                    f"Table already has an enabled stream: TableName: {schema.name}"
                )
            if not current and not stream.get("StreamEnabled"):  # and disable needs one on
                raise ValidationError(
                    f"Table has no enabled stream to disable: TableName: {schema.name}"
                )
            schema = schema.with_stream(stream if stream.get("StreamEnabled") else None)
        new = schema.with_changes(attributes=attributes, indexes=tuple(indexes), **changes)
        store = self.engine.store
        with store.atomic():
            for name in dropped:
                store.drop_index(table_id, name)
            if created:
                names = {i.name for i in created}
                for row in store.scan(table_id, None, 0, 1, None):
                    base = new.encoded_key(row.item)
                    try:
                        index_keys = new.index_keys(row.item)
                    except ValidationError:
                        continue  # an item whose attribute has another type stays out of the index
                    for name, index_key in index_keys.items():
                        if name in names:
                            store.put_index(table_id, name, index_key, base)
            store.save_table(table_id, new)
            self.engine.stream_changed(before, new)
        self.engine.tables[new.name] = (table_id, new)
        count, size = store.stats(table_id)
        return {"TableDescription": new.describe(count, size)}

"""Query, Scan, BatchGetItem and TransactGetItems.

A Query's key condition becomes one hash key and a range-key interval, read from the store as
one index range scan. ``Limit`` counts items read (before the filter), a page also ends after
1 MB of items read, and ``LastEvaluatedKey`` (table key plus index key) is the last item read,
as DynamoDB does. BatchGetItem answers at most 16 MB; what does not fit is in
``UnprocessedKeys``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .ast import And, Between, Compare, Condition, Function, In, Literal, Not, Or, Path, Size
from .engine import Body, Engine, projection_of
from .errors import ValidationError
from .evaluate import compare, matches, project
from .parser import Placeholders, parse_condition
from .schema import IndexSchema, TableSchema
from .sqlite import partition
from .store import Bound, Row
from .values import Item, Value, encode_key, item_size, value_type

PAGE_BYTES = 1024 * 1024
BATCH_BYTES = 16 * 1024 * 1024
MAX_BATCH_GET = 100
MAX_TRANSACT = 100
KEY_CONDITION = "KeyConditionExpression"


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class Reads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- Query and Scan ------------------------------------------------------------------------

    def query(self, body: Body) -> Body:
        table_id, schema = self.engine.table(body.get("TableName"))
        index = self._index(schema, body)
        hash_name = index.hash_key if index else schema.hash_key
        range_name = index.range_key if index else schema.range_key
        placeholders = Placeholders(
            body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
        )
        if body.get("KeyConditions") is not None:
            raise ValidationError(
                "The KeyConditions parameter is not supported; use KeyConditionExpression"
            )
        if body.get("KeyConditionExpression") is None:
            raise ValidationError(
                "Either the KeyConditions or KeyConditionExpression parameter "
                "must be specified in the request."
            )
        node = parse_condition(body["KeyConditionExpression"], placeholders, KEY_CONDITION)
        hash_value, low, high = key_range(node, schema, hash_name, range_name)
        read = Page(schema, index, body, placeholders, (hash_name, range_name))
        after = None
        if body.get("ExclusiveStartKey") is not None:
            after = start_position(schema, index, body["ExclusiveStartKey"], scan=False)
        forward = body.get("ScanIndexForward", True) is not False
        rows = self.engine.store.query(
            table_id,
            index.name if index else None,
            encode_key(hash_value),
            low,
            high,
            forward,
            after,
        )
        return read.collect(rows)

    def scan(self, body: Body) -> Body:
        table_id, schema = self.engine.table(body.get("TableName"))
        index = self._index(schema, body)
        segment, total = body.get("Segment"), body.get("TotalSegments")
        if (segment is None) != (total is None):
            raise ValidationError(
                "The TotalSegments parameter is required but was not present in the request when "
                "Segment parameter is present"
                if total is None
                else "The Segment parameter is required but was not present in the request when "
                "parameter TotalSegments is present"
            )
        if total is not None:
            if not isinstance(total, int) or not 1 <= total <= 1_000_000:
                raise ValidationError("TotalSegments must be between 1 and 1000000")
            if not isinstance(segment, int) or not 0 <= segment < total:
                raise ValidationError(
                    f"The Segment parameter is zero-based and must be less than parameter "
                    f"TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
                )
        placeholders = Placeholders(
            body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
        )
        read = Page(schema, index, body, placeholders)
        after = None
        if body.get("ExclusiveStartKey") is not None:
            after = start_position(schema, index, body["ExclusiveStartKey"], scan=True)
        rows = self.engine.store.scan(
            table_id, index.name if index else None, segment or 0, total or 1, after
        )
        return read.collect(rows)

    @staticmethod
    def _index(schema: TableSchema, body: Body) -> IndexSchema | None:
        name = body.get("IndexName")
        if name is None:
            return None
        index = schema.index(name)
        if index is None:
            raise ValidationError(f"The table does not have the specified index: {name}")
        if body.get("ConsistentRead") and not index.local:
            raise ValidationError("Consistent reads are not supported on global secondary indexes")
        return index

    # -- batches of keys -------------------------------------------------------------------------

    def batch_get_item(self, body: Body) -> Body:
        requests = body.get("RequestItems")
        if not isinstance(requests, dict) or not requests:
            raise ValidationError("RequestItems must be a non-empty map")
        total = sum(
            len(r.get("Keys") or []) if isinstance(r, dict) else 0 for r in requests.values()
        )
        if total > MAX_BATCH_GET:
            raise ValidationError("Too many items requested for the BatchGetItem call")
        plans = []
        for name, request in requests.items():
            table_id, schema = self.engine.table(name)
            keys = request.get("Keys") if isinstance(request, dict) else None
            if not isinstance(keys, list) or not keys:
                raise ValidationError("Keys must be a non-empty list")
            placeholders = Placeholders(request.get("ExpressionAttributeNames"))
            paths = projection_of(request, placeholders)
            placeholders.check_all_used()
            encoded = [schema.check_key(key) for key in keys]
            if len(set(encoded)) != len(encoded):
                raise ValidationError("Provided list of item keys contains duplicates")
            plans.append((name, table_id, request, keys, encoded, paths))
        responses: dict[str, list[Item]] = {}
        unprocessed: dict[str, Any] = {}
        size = 0
        for name, table_id, request, keys, encoded, paths in plans:
            found = responses.setdefault(name, [])
            for key, position in zip(keys, encoded, strict=True):
                if size > BATCH_BYTES:
                    entry = unprocessed.setdefault(name, {**request, "Keys": []})
                    entry["Keys"].append(key)
                    continue
                item = self.engine.store.get(table_id, position)
                if item is not None:
                    size += item_size(item)
                    found.append(project(item, paths) if paths is not None else item)
        return {"Responses": responses, "UnprocessedKeys": unprocessed}

    def transact_get_items(self, body: Body) -> Body:
        actions = body.get("TransactItems")
        if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_TRANSACT:
            raise ValidationError("TransactItems must hold between 1 and 100 actions")
        plans = []
        for action in actions:
            get = action.get("Get") if isinstance(action, dict) else None
            if not isinstance(get, dict):
                raise ValidationError("Every TransactGetItems action must be a Get")
            table_id, schema = self.engine.table(get.get("TableName"))
            key = schema.check_key(get.get("Key"))
            placeholders = Placeholders(get.get("ExpressionAttributeNames"))
            paths = projection_of(get, placeholders)
            placeholders.check_all_used()
            plans.append((table_id, key, paths))
        responses: list[Body] = []
        with self.engine.store.atomic():
            for table_id, key, paths in plans:
                item = self.engine.store.get(table_id, key)
                if item is None:
                    responses.append({})
                else:
                    responses.append({"Item": project(item, paths) if paths is not None else item})
        return {"Responses": responses}


class Page:
    """One page of a Query or Scan: select, filter, projection, limits."""

    def __init__(
        self,
        schema: TableSchema,
        index: IndexSchema | None,
        body: Body,
        placeholders: Placeholders,
        query_keys: tuple[str | None, ...] = (),
    ) -> None:
        self.schema = schema
        self.index = index
        for legacy in ("KeyConditions", "QueryFilter", "ScanFilter", "ConditionalOperator"):
            if body.get(legacy) is not None:
                raise ValidationError(
                    f"The {legacy} parameter is not supported; use the expression parameters"
                )
        limit = body.get("Limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValidationError(
                f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                "constraint: Member must have value greater than or equal to 1"
            )
        self.limit = limit
        self.paths = projection_of(body, placeholders)
        select = body.get("Select")
        if select is None:
            select = (
                "SPECIFIC_ATTRIBUTES"
                if self.paths is not None
                else ("ALL_PROJECTED_ATTRIBUTES" if index is not None else "ALL_ATTRIBUTES")
            )
        self.select = select
        self._check_select()
        text = body.get("FilterExpression")
        self.filter = None
        if text is not None:
            self.filter = parse_condition(text, placeholders, "FilterExpression")
            if query_keys:
                check_filter_keys(self.filter, query_keys)
        placeholders.check_all_used()

    def _check_select(self) -> None:
        select, index = self.select, self.index
        if select not in (
            "ALL_ATTRIBUTES",
            "ALL_PROJECTED_ATTRIBUTES",
            "SPECIFIC_ATTRIBUTES",
            "COUNT",
        ):
            raise ValidationError(f"Unknown Select value: {select}")
        if self.paths is not None and select != "SPECIFIC_ATTRIBUTES":
            raise ValidationError(
                "Cannot specify the AttributesToGet or ProjectionExpression when choosing to get "
                f"{select}"
            )
        if select == "SPECIFIC_ATTRIBUTES" and self.paths is None:
            raise ValidationError("Select SPECIFIC_ATTRIBUTES needs a ProjectionExpression")
        if select == "ALL_PROJECTED_ATTRIBUTES" and index is None:
            raise ValidationError(
                "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES "
                "is not supported for a table without an IndexName"
            )
        if (
            select == "ALL_ATTRIBUTES"
            and index is not None
            and not index.local
            and index.projection != "ALL"
        ):
            raise ValidationError(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not "
                f"supported for global secondary index {index.name} because its projection type "
                "is not ALL"
            )

    def collect(self, rows: Iterator[Row]) -> Body:
        items: list[Item] = []
        count = scanned = size = 0
        last: Item | None = None
        for row in rows:
            item = row.item
            if self.index is not None and self.select != "ALL_ATTRIBUTES":
                item = self.schema.project_for_index(self.index, item)
            scanned += 1
            size += item_size(row.item)
            if self.filter is None or matches(item, self.filter):
                count += 1
                if self.select != "COUNT":
                    items.append(project(item, self.paths) if self.paths is not None else item)
            if scanned == self.limit or size >= PAGE_BYTES:
                last = row.item
                break
        out: Body = {"Count": count, "ScannedCount": scanned}
        if self.select != "COUNT":
            out["Items"] = items
        if last is not None:
            names = self.schema.key_names
            if self.index is not None:
                names = self.schema.index_key_names(self.index)
            out["LastEvaluatedKey"] = {n: last[n] for n in names if n in last}
        return out


def check_filter_keys(node: Condition, keys: tuple[str | None, ...]) -> None:
    """A Query's filter may not name the key attributes of the key it queries."""
    for name in top_names(node):
        if name in keys:
            raise ValidationError(
                "Filter Expression can only contain non-primary key attributes: Primary key "
                f"attribute: {name}"
            )


def top_names(node: Condition) -> Iterator[str]:
    if isinstance(node, And | Or):
        yield from top_names(node.left)
        yield from top_names(node.right)
        return
    if isinstance(node, Not):
        yield from top_names(node.condition)
        return
    if isinstance(node, Compare):
        operands: tuple[Any, ...] = (node.left, node.right)
    elif isinstance(node, Between):
        operands = (node.operand, node.low, node.high)
    elif isinstance(node, In):
        operands = (node.operand, *node.choices)
    else:
        operands = node.args
    for operand in operands:
        path = operand.path if isinstance(operand, Size) else operand
        if isinstance(path, Path):
            yield str(path.elements[0])


def key_range(
    node: Condition,
    schema: TableSchema,
    hash_name: str,
    range_name: str | None,
) -> tuple[Value, Bound | None, Bound | None]:
    """The hash key value and range-key bounds of a KeyConditionExpression."""
    parts: list[Condition] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, And):
            stack.extend((current.right, current.left))
        elif isinstance(current, Or | Not | In):
            operator = type(current).__name__.upper()
            raise ValidationError(f"Invalid operator used in KeyConditionExpression: {operator}")
        else:
            parts.append(current)
    hash_value: Value | None = None
    low = high = None
    if len(parts) > 2:
        raise ValidationError("Conditions can be of length 1 or 2 only")
    for part in parts:
        name, value, op = key_part(part)
        expected = schema.attributes.get(name)
        if name == hash_name and op == "=" and hash_value is None:
            check_type(value, expected)
            hash_value = value[0]
        elif name == range_name and range_name is not None:
            for v in value:
                check_type((v,), expected)
            low, high = bounds(op, value)
        elif name in (hash_name, range_name):
            raise ValidationError("Query key condition not supported")
        else:
            raise ValidationError(
                f"Query condition missed key schema element: {range_name or hash_name}"
                if hash_value is not None or name != hash_name
                else f"Query condition missed key schema element: {hash_name}"
            )
    if hash_value is None:
        raise ValidationError(f"Query condition missed key schema element: {hash_name}")
    return hash_value, low, high


def key_part(node: Condition) -> tuple[str, tuple[Value, ...], str]:
    """(attribute, values, operator) of one key condition."""
    if isinstance(node, Compare):
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Literal) and isinstance(right, Path):
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if isinstance(left, Path) and isinstance(right, Literal) and op != "<>":
            return single(left), (right.value,), op
    elif isinstance(node, Between):
        if (
            isinstance(node.operand, Path)
            and isinstance(node.low, Literal)
            and isinstance(node.high, Literal)
        ):
            return single(node.operand), (node.low.value, node.high.value), "BETWEEN"
    elif isinstance(node, Function) and node.name == "begins_with":
        path, prefix = node.args
        if isinstance(path, Path) and isinstance(prefix, Literal):
            return single(path), (prefix.value,), "begins_with"
    raise ValidationError("Query key condition not supported")


def single(path: Path) -> str:
    if len(path.elements) != 1:
        raise ValidationError("Query key condition not supported")
    return str(path.elements[0])


def check_type(values: tuple[Value, ...], expected: str | None) -> None:
    for value in values:
        if value_type(value) != expected:
            raise ValidationError(
                "One or more parameter values were invalid: Condition parameter "
                "type does not match schema type"
            )


def bounds(op: str, values: tuple[Value, ...]) -> tuple[Bound | None, Bound | None]:
    first = encode_key(values[0])
    if op == "=":
        return Bound(first, True), Bound(first, True)
    if op == "<":
        return None, Bound(first, False)
    if op == "<=":
        return None, Bound(first, True)
    if op == ">":
        return Bound(first, False), None
    if op == ">=":
        return Bound(first, True), None
    if op == "BETWEEN":
        if compare(">", values[0], values[1]):
            raise ValidationError(
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be "
                f"greater than or equal to lower bound; lower bound operand: AttributeValue: "
                f"{values[0]}, upper bound operand: AttributeValue: {values[1]}"
            )
        return Bound(first, True), Bound(encode_key(values[1]), True)
    if value_type(values[0]) == "N":
        raise ValidationError(
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
            "operator or function: begins_with, operand type: N"
        )
    end = successor(first)
    return Bound(first, True), None if end is None else Bound(end, False)


def start_position(
    schema: TableSchema, index: IndexSchema | None, start: object, scan: bool
) -> tuple[Any, ...]:
    """Where a page starts, from an ``ExclusiveStartKey``."""
    if not isinstance(start, dict):
        raise ValidationError("The provided starting key is invalid")
    try:
        base = schema.encoded_key(start)
        if index is None:
            return (partition(base[0]), *base) if scan else (base[1],)
        index_key = schema.index_keys(start).get(index.name)
    except ValidationError:
        raise ValidationError("The provided starting key is invalid") from None
    if index_key is None:
        raise ValidationError("The provided starting key is invalid")
    if scan:
        return (partition(index_key[0]), *index_key, *base)
    return (index_key[1], *base)

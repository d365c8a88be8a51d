"""The data page: the stack's tables and buckets, and a browser of a table's items.

``GET /data`` lists the tables (keys, indexes, item count: ``ListTables`` + ``DescribeTable``)
and the buckets (see :mod:`.data_buckets` for their browser). ``GET /data/tables/{name}`` pages
through a table's items with ``Scan``, or with ``Query`` given a partition key value (and a
sort key condition), on the table or one of its indexes; ``start`` carries the page's
``LastEvaluatedKey``. Every read is an operation of the tables component, run as the DynamoDB
API runs it (``node.tables.call``), ``Limit``-ed to one page. Items are shown as plain JSON;
their DynamoDB-typed JSON is the row's tooltip and what the "types" toggle shows.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...storage.tables.errors import TablesError
from ..app import Console
from . import data_buckets

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE = 25
SORT_CONDITIONS = ("=", "<", "<=", ">", ">=", "begins_with", "between")


def routes(console: Console) -> list[BaseRoute]:
    async def index(request: Request) -> Response:
        tables = await _tables(console)
        buckets = await data_buckets.bucket_rows(console)
        return console.render(request, "data.html", title="Data", tables=tables, buckets=buckets)

    async def table(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            described = (await console.node.tables.call("DescribeTable", {"TableName": name}))[
                "Table"
            ]
        except TablesError as exc:
            return console.render(
                request, "data_table.html", status_code=404, title=f"Table {name}",
                name=name, table=None, error=str(exc),
            )  # fmt: skip
        form = BrowseForm.from_request(request, described)
        items: list[dict[str, Any]] = []
        next_start: str | None = None
        error = form.error
        if error is None:
            try:
                answer = await console.node.tables.call(form.operation, form.body(name))
            except (TablesError, ValueError) as exc:
                error = str(exc)
            else:
                items = answer.get("Items", [])
                last = answer.get("LastEvaluatedKey")
                next_start = json.dumps(last, separators=(",", ":")) if last else None
        return console.render(
            request,
            "data_table.html",
            title=f"Table {name}",
            name=name,
            table=described,
            form=form,
            key_names=form.key_names,
            rows=[_row(item, form.key_names) for item in items],
            next_url=form.url_with(next_start) if next_start else None,
            error=error,
            sort_conditions=SORT_CONDITIONS,
            page_sizes=PAGE_SIZES,
        )

    return [
        Route("/data", index, methods=["GET"]),
        Route("/data/tables/{name}", table, methods=["GET"]),
        *data_buckets.routes(console),
    ]


async def _tables(console: Console) -> list[dict[str, Any]]:
    """Each table's description (the first page of ``ListTables``: up to 100 tables)."""
    tables = console.node.tables
    names = (await tables.call("ListTables", {"Limit": 100})).get("TableNames", [])
    described = []
    for name in names:
        try:
            table = (await tables.call("DescribeTable", {"TableName": name}))["Table"]
        except TablesError:  # deleted between the two calls
            continue
        described.append(
            {
                "name": name,
                "schema": _key_schema(table.get("KeySchema", [])),
                "indexes": _indexes(table),
                "item_count": table.get("ItemCount"),
                "size": table.get("TableSizeBytes"),
                "stream": table.get("StreamSpecification", {}).get("StreamViewType"),
            }
        )
    return described


INDEX_FIELDS = (("global", "GlobalSecondaryIndexes"), ("local", "LocalSecondaryIndexes"))


def _indexes(table: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": index["IndexName"], "schema": _key_schema(index["KeySchema"]), "kind": kind}
        for kind, field in INDEX_FIELDS
        for index in table.get(field, [])
    ]


def _key_schema(schema: list[dict[str, str]]) -> dict[str, str | None]:
    keys: dict[str, str | None] = {"hash": None, "range": None}
    for element in schema:
        keys[element["KeyType"].lower()] = element["AttributeName"]
    return keys


class BrowseForm:
    """What the table browser was asked: Scan, or Query by partition key (+ sort condition)."""

    def __init__(self, described: dict[str, Any], params: dict[str, str]) -> None:
        self.params = params
        self.index = params.get("index", "")
        self.pk = params.get("pk", "")
        self.sk_op = params.get("sk_op", "")
        self.sk = params.get("sk", "")
        self.sk2 = params.get("sk2", "")
        self.start = params.get("start", "")
        self.error: str | None = None
        definitions = described.get("AttributeDefinitions", [])
        self.types = {a["AttributeName"]: a["AttributeType"] for a in definitions}
        indexes = {index["name"]: index for index in _indexes(described)}
        self.indexes = list(indexes)
        table_keys = _key_schema(described.get("KeySchema", []))
        keys = indexes[self.index]["schema"] if self.index in indexes else table_keys
        if self.index and self.index not in indexes:
            self.error = f"no index named {self.index!r}"
        self.hash_key, self.range_key = keys["hash"] or "", keys["range"]
        names = (self.hash_key, self.range_key, table_keys["hash"], table_keys["range"])
        self.key_names = list(dict.fromkeys(name for name in names if name))
        try:
            self.limit = int(params.get("limit", DEFAULT_PAGE))
        except ValueError:
            self.limit = DEFAULT_PAGE
        self.limit = self.limit if self.limit in PAGE_SIZES else DEFAULT_PAGE
        if self.sk_op and self.sk_op not in SORT_CONDITIONS:
            self.error = f"unknown sort key condition {self.sk_op!r}"
        if self.sk_op and not self.pk:
            self.error = "a sort key condition needs a partition key value"

    @classmethod
    def from_request(cls, request: Request, described: dict[str, Any]) -> BrowseForm:
        return cls(described, dict(request.query_params))

    @property
    def operation(self) -> str:
        return "Query" if self.pk else "Scan"

    def typed(self, name: str, text: str) -> dict[str, str]:
        """A key value typed as the attribute definitions say (numbers stay text, as DynamoDB
        sends them; binary is given as base64)."""
        kind = self.types.get(name, "S")
        if kind == "N":
            float(text)  # ValueError: reported by body()
        elif kind == "B":
            base64.b64decode(text, validate=True)
        return {kind: text}

    def body(self, table: str) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": table, "Limit": self.limit}
        if self.index:
            body["IndexName"] = self.index
        if self.start:
            try:
                body["ExclusiveStartKey"] = json.loads(self.start)
            except ValueError:
                raise ValueError("start is not a JSON key") from None
        if not self.pk:
            return body
        names = {"#pk": self.hash_key}
        try:
            values = {":pk": self.typed(self.hash_key, self.pk)}
            condition = "#pk = :pk"
            if self.sk_op and self.range_key:
                names["#sk"] = self.range_key
                values[":sk"] = self.typed(self.range_key, self.sk)
                if self.sk_op == "begins_with":
                    condition += " AND begins_with(#sk, :sk)"
                elif self.sk_op == "between":
                    values[":sk2"] = self.typed(self.range_key, self.sk2)
                    condition += " AND #sk BETWEEN :sk AND :sk2"
                else:
                    condition += f" AND #sk {self.sk_op} :sk"
        except ValueError:
            raise ValueError("a key value does not match the key's type") from None
        body.update(
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ScanIndexForward=self.params.get("order") != "desc",
        )
        return body

    def url_with(self, start: str) -> str:
        params = {k: v for k, v in self.params.items() if v and k != "start"}
        return "?" + urlencode({**params, "start": start})


def plain(value: dict[str, Any]) -> Any:
    """A DynamoDB-typed value (``{"S": "x"}``, ``{"M": {...}}``, ...) as plain JSON."""
    ((kind, inner),) = value.items()
    if kind in ("S", "B", "BOOL"):
        return inner
    if kind == "N":
        return _number(inner)
    if kind == "NULL":
        return None
    if kind == "M":
        return {key: plain(item) for key, item in inner.items()}
    if kind == "L":
        return [plain(item) for item in inner]
    if kind == "NS":
        return [_number(item) for item in inner]
    return list(inner)  # SS, BS


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _row(item: dict[str, Any], key_names: list[str]) -> dict[str, Any]:
    shown = {name: plain(value) for name, value in item.items()}
    return {
        "keys": [shown.get(name) for name in key_names],
        "plain": json.dumps(shown, indent=2, ensure_ascii=False, sort_keys=True),
        "typed": json.dumps(item, indent=2, ensure_ascii=False, sort_keys=True),
        "types": {name: next(iter(value)) for name, value in item.items()},
    }

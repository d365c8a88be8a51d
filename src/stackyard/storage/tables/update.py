"""Applies an update expression (SET, REMOVE, ADD, DELETE) to an item.

As DynamoDB does: every right-hand side is evaluated against the item as it was before the
update; a SET into a list index past its end appends; REMOVE of list elements shifts the rest
down; ADD adds to a number (a missing attribute counts as 0) or unions a set; DELETE takes
members out of a set and removes the attribute when the set becomes empty.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from .ast import Arithmetic, IfNotExists, ListAppend, Literal, Operand, Path, Size, Update
from .errors import ValidationError
from .evaluate import resolve, size_of
from .values import (
    CONTEXT,
    SET_TYPES,
    Item,
    Value,
    check_number,
    format_number,
    scalar,
    value_type,
)

_INVALID_PATH = "The document path provided in the update expression is invalid for update"


def check_overlaps(paths: list[Path], what: str) -> None:
    """DynamoDB refuses two paths of one expression where one is a prefix of the other."""
    seen = sorted((p.elements for p in paths), key=len)
    for i, shorter in enumerate(seen):
        for longer in seen[i + 1 :]:
            if longer[: len(shorter)] == shorter:
                kind = "overlap" if len(longer) > len(shorter) else "conflict"
                raise ValidationError(
                    f"Invalid {what}: Two document paths {kind} with each other; must remove "
                    f"or rewrite one of these paths; path one: {_text(shorter)}, path two: "
                    f"{_text(longer)}"
                )


def _text(elements: tuple[str | int, ...]) -> str:
    return "[" + ", ".join(str(e) for e in elements) + "]"


def apply_update(item: Item, update: Update) -> Item:
    """A new item: ``item`` with ``update`` applied (``item`` is left as it was)."""
    new = copy.deepcopy(item)
    values = [(path, evaluate(item, operand)) for path, operand in update.set]
    for path, value in values:
        assign(new, path, value)
    for path in sorted(update.remove, key=_removal_order, reverse=True):
        remove(new, path)
    for path, literal in update.add:
        add(new, path, literal.value)
    for path, literal in update.delete:
        delete(new, path, literal.value)
    return new


def _removal_order(path: Path) -> int:
    """List elements are removed from the highest index down, so indexes stay valid."""
    last = path.elements[-1]
    return last if isinstance(last, int) else -1


def evaluate(item: Item, operand: Operand) -> Value:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Path):
        value = resolve(item, operand)
        if value is None:
            raise ValidationError(
                "The provided expression refers to an attribute that does not exist in the item"
            )
        return value
    if isinstance(operand, IfNotExists):
        existing = resolve(item, operand.path)
        return existing if existing is not None else evaluate(item, operand.default)
    if isinstance(operand, ListAppend):
        first, second = evaluate(item, operand.first), evaluate(item, operand.second)
        if "L" not in first or "L" not in second:
            raise ValidationError(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                f"operator or function: list_append, operand type: "
                f"{value_type(first) if 'L' not in first else value_type(second)}"
            )
        return {"L": copy.deepcopy(first["L"]) + copy.deepcopy(second["L"])}
    if isinstance(operand, Size):
        value = resolve(item, operand.path)
        if value is None:
            raise ValidationError(
                "The provided expression refers to an attribute that does not exist in the item"
            )
        return {"N": str(size_of(value))}
    assert isinstance(operand, Arithmetic)
    left, right = evaluate(item, operand.left), evaluate(item, operand.right)
    for side in (left, right):
        if "N" not in side:
            raise ValidationError("An operand in the update expression has an incorrect data type")
    return {"N": arithmetic(Decimal(left["N"]), Decimal(right["N"]), operand.op)}


def arithmetic(a: Decimal, b: Decimal, op: str) -> str:
    try:
        result = CONTEXT.add(a, b) if op == "+" else CONTEXT.subtract(a, b)
    except ArithmeticError:
        raise ValidationError(
            "Number overflow. Attempting to store a number with magnitude larger than supported "
            "range"
        ) from None
    return format_number(check_number(result))


def _parent(item: Item, path: Path) -> Any:
    """The container (a dict of attributes or a list) that holds the last element of ``path``."""
    container: Any = item
    for element in path.elements[:-1]:
        if isinstance(element, int):
            if not isinstance(container, list) or element >= len(container):
                raise ValidationError(_INVALID_PATH)
            value = container[element]
        else:
            if not isinstance(container, dict) or element not in container:
                raise ValidationError(_INVALID_PATH)
            value = container[element]
        if "M" in value:
            container = value["M"]
        elif "L" in value:
            container = value["L"]
        else:
            raise ValidationError(_INVALID_PATH)
    last = path.elements[-1]
    if isinstance(last, int) != isinstance(container, list):
        raise ValidationError(_INVALID_PATH)
    return container


def assign(item: Item, path: Path, value: Value) -> None:
    container = _parent(item, path)
    last = path.elements[-1]
    value = copy.deepcopy(value)
    if isinstance(container, list):
        assert isinstance(last, int)
        if last >= len(container):
            container.append(value)
        else:
            container[last] = value
    else:
        container[last] = value


def remove(item: Item, path: Path) -> None:
    try:
        container = _parent(item, path)
    except ValidationError:
        if len(path.elements) > 1:
            return  # DynamoDB ignores REMOVE of a path whose parent is missing
        raise
    last = path.elements[-1]
    if isinstance(container, list):
        assert isinstance(last, int)
        if last < len(container):
            del container[last]
    else:
        container.pop(last, None)


def add(item: Item, path: Path, value: Value) -> None:
    kind = value_type(value)
    if kind != "N" and kind not in SET_TYPES:
        raise ValidationError(
            "Invalid UpdateExpression: Incorrect operand type for operator or function; "
            f"operator: ADD, operand type: {_type_name(kind)}"
        )
    existing = resolve(item, path)
    if existing is None:
        assign(item, path, value)
        return
    if value_type(existing) != kind:
        raise ValidationError("An operand in the update expression has an incorrect data type")
    if kind == "N":
        assign(item, path, {"N": arithmetic(Decimal(existing["N"]), Decimal(value["N"]), "+")})
        return
    members = list(existing[kind])
    have = {scalar({SET_TYPES[kind]: m})[1] for m in members}
    for member in value[kind]:
        if scalar({SET_TYPES[kind]: member})[1] not in have:
            members.append(member)
    assign(item, path, {kind: members})


def delete(item: Item, path: Path, value: Value) -> None:
    kind = value_type(value)
    if kind not in SET_TYPES:
        raise ValidationError(
            "Invalid UpdateExpression: Incorrect operand type for operator or function; "
            f"operator: DELETE, operand type: {_type_name(kind)}"
        )
    existing = resolve(item, path)
    if existing is None:
        return
    if value_type(existing) != kind:
        raise ValidationError("An operand in the update expression has an incorrect data type")
    gone = {scalar({SET_TYPES[kind]: m})[1] for m in value[kind]}
    members = [m for m in existing[kind] if scalar({SET_TYPES[kind]: m})[1] not in gone]
    if members:
        assign(item, path, {kind: members})
    else:
        remove(item, path)


def _type_name(kind: str) -> str:
    return {"S": "STRING", "B": "BINARY", "BOOL": "BOOLEAN", "L": "LIST", "M": "MAP"}.get(
        kind, kind
    )

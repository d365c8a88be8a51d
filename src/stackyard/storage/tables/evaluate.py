"""Evaluates condition, filter and projection expressions against an item.

Semantics follow the DynamoDB developer guide: a comparison with a missing attribute or between
values of different types is false (``<>`` is true for different values, including a missing
attribute); ``<``/``>`` order numbers, strings (by UTF-8 bytes) and binary; ``size`` counts
characters of a string, bytes of a binary and members of a set, list or map.
"""

from __future__ import annotations

import copy
from typing import Any

from .ast import (
    And,
    Between,
    Compare,
    Condition,
    Function,
    In,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    Size,
)
from .errors import ValidationError
from .values import SET_TYPES, Item, Value, decode_binary, equal, scalar, set_members, value_type

ORDERED = frozenset({"N", "S", "B"})
TYPE_NAMES = frozenset({"S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"})


def resolve(item: Item, path: Path) -> Value | None:
    """The value at ``path`` in ``item``, or None when any step is missing."""
    current: Value | None = None
    for position, element in enumerate(path.elements):
        if position == 0:
            assert isinstance(element, str)
            current = item.get(element)
        elif isinstance(element, int):
            if current is None or "L" not in current or element >= len(current["L"]):
                return None
            current = current["L"][element]
        else:
            if current is None or "M" not in current:
                return None
            current = current["M"].get(element)
        if current is None:
            return None
    return current


def operand_value(item: Item, operand: Operand) -> Value | None:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Path):
        return resolve(item, operand)
    if isinstance(operand, Size):
        value = resolve(item, operand.path)
        return None if value is None else {"N": str(size_of(value))}
    raise ValidationError("Invalid operand in a condition")


def size_of(value: Value) -> int:
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner)
    if kind == "B":
        return len(decode_binary(inner))
    if kind in SET_TYPES or kind in ("L", "M"):
        return len(inner)
    raise ValidationError(
        f"Invalid ConditionExpression: Incorrect operand type for operator or function; "
        f"operator or function: size, operand type: {kind}"
    )


def compare(op: str, left: Value | None, right: Value | None) -> bool:
    if op == "<>":
        return left is None or right is None or not equal(left, right)
    if left is None or right is None:
        return False
    if op == "=":
        return equal(left, right)
    kind = value_type(left)
    if kind != value_type(right) or kind not in ORDERED:
        return False
    a, b = scalar(left)[1], scalar(right)[1]
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def matches(item: Item, node: Condition) -> bool:
    """Whether ``item`` (``{}`` for no item) satisfies the condition."""
    if isinstance(node, And):
        return matches(item, node.left) and matches(item, node.right)
    if isinstance(node, Or):
        return matches(item, node.left) or matches(item, node.right)
    if isinstance(node, Not):
        return not matches(item, node.condition)
    if isinstance(node, Compare):
        return compare(node.op, operand_value(item, node.left), operand_value(item, node.right))
    if isinstance(node, Between):
        value = operand_value(item, node.operand)
        low, high = operand_value(item, node.low), operand_value(item, node.high)
        if low is not None and high is not None and compare(">", low, high):
            raise ValidationError(
                "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be "
                "greater than or equal to lower bound"
            )
        return compare(">=", value, low) and compare("<=", value, high)
    if isinstance(node, In):
        value = operand_value(item, node.operand)
        return value is not None and any(
            compare("=", value, operand_value(item, choice)) for choice in node.choices
        )
    return function(item, node)


def function(item: Item, node: Function) -> bool:
    path = node.args[0]
    assert isinstance(path, Path)
    value = resolve(item, path)
    if node.name == "attribute_exists":
        return value is not None
    if node.name == "attribute_not_exists":
        return value is None
    argument = operand_value(item, node.args[1])
    if node.name == "attribute_type":
        if argument is None or "S" not in argument or argument["S"] not in TYPE_NAMES:
            raise ValidationError(
                "Invalid ConditionExpression: Invalid attribute type name found; type: "
                f"{argument}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
            )
        return value is not None and value_type(value) == argument["S"]
    if value is None or argument is None:
        return False
    if node.name == "begins_with":
        kind = value_type(value)
        if kind != value_type(argument) or kind not in ("S", "B"):
            return False
        return bool(scalar(value)[1].startswith(scalar(argument)[1]))
    return contains(value, argument)


def contains(value: Value, argument: Value) -> bool:
    kind = value_type(value)
    if kind == "S":
        return "S" in argument and argument["S"] in value["S"]
    if kind == "B":
        return "B" in argument and decode_binary(argument["B"]) in decode_binary(value["B"])
    if kind in SET_TYPES:
        if value_type(argument) != SET_TYPES[kind]:
            return False
        return bool(
            scalar(argument)[1] in set_members(value)
            if kind != "SS"
            else argument["S"] in value[kind]
        )
    if kind == "L":
        return any(equal(element, argument) for element in value["L"])
    return False


# -- projection -------------------------------------------------------------------------------


def project(item: Item, paths: list[Path]) -> Item:
    """The parts of ``item`` named by ``paths``; list elements keep their relative order."""
    out: dict[str, Any] = {}
    for path in paths:
        value = resolve(item, path)
        if value is not None:
            _place(out, item, path)
    return _compact(out)


def _place(out: dict[str, Any], item: Item, path: Path) -> None:
    """Copy the value at ``path`` into ``out``; lists become {index: value} until compacted."""
    source: Any = {"M": item}
    target: dict[Any, Any] = out
    for position, element in enumerate(path.elements):
        last = position == len(path.elements) - 1
        source = source["L"][element] if isinstance(element, int) else source["M"][element]
        if last:
            target[element] = copy.deepcopy(source)
            return
        kind = "L" if "L" in source else "M"
        existing = target.get(element)
        if existing is None or not isinstance(existing, _Partial):
            existing = target[element] = _Partial(kind)
        target = existing.children


class _Partial:
    __slots__ = ("children", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.children: dict[Any, Any] = {}


def _compact(out: dict[Any, Any]) -> Item:
    result: Item = {}
    for key, value in out.items():
        result[key] = _compact_value(value)
    return result


def _compact_value(value: Any) -> Value:
    if not isinstance(value, _Partial):
        return value  # type: ignore[no-any-return]
    if value.kind == "L":
        return {"L": [_compact_value(value.children[i]) for i in sorted(value.children)]}
    return {"M": {k: _compact_value(v) for k, v in value.children.items()}}

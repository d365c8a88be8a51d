"""The syntax tree of DynamoDB expressions, with placeholders already resolved.

``Path`` elements are attribute names (str) and list indexes (int). ``Literal`` holds an
attribute value from ``ExpressionAttributeValues``. ``render`` turns a tree back into
expression text (used by the property tests: parse(render(tree)) == tree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Value = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Path:
    elements: tuple[str | int, ...]

    def __str__(self) -> str:
        out = ""
        for element in self.elements:
            out += f"[{element}]" if isinstance(element, int) else f".{element}"
        return out.lstrip(".")


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value
    name: str = ""  # the placeholder it came from

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Literal) and self.value == other.value

    def __hash__(self) -> int:
        return hash(repr(self.value))


@dataclass(frozen=True, slots=True)
class Size:
    path: Path


@dataclass(frozen=True, slots=True)
class IfNotExists:
    path: Path
    default: Operand


@dataclass(frozen=True, slots=True)
class ListAppend:
    first: Operand
    second: Operand


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: str  # + or -
    left: Operand
    right: Operand


Operand = Path | Literal | Size | IfNotExists | ListAppend | Arithmetic


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < <= > >=
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    operand: Operand
    choices: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Function:
    name: str  # attribute_exists, attribute_not_exists, attribute_type, begins_with, contains
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


Condition = Compare | Between | In | Function | And | Or | Not


@dataclass(frozen=True, slots=True)
class Update:
    set: tuple[tuple[Path, Operand], ...] = ()
    remove: tuple[Path, ...] = ()
    add: tuple[tuple[Path, Literal], ...] = ()
    delete: tuple[tuple[Path, Literal], ...] = ()

    def paths(self) -> list[Path]:
        return [
            *(p for p, _ in self.set),
            *self.remove,
            *(p for p, _ in self.add),
            *(p for p, _ in self.delete),
        ]


# -- rendering (names as #placeholders, values as :placeholders) --------------------------------


class Renderer:
    """Renders trees to text, collecting the placeholders it invents."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Value] = {}

    def path(self, path: Path) -> str:
        out = ""
        for element in path.elements:
            if isinstance(element, int):
                out += f"[{element}]"
            else:
                placeholder = next(
                    (k for k, v in self.names.items() if v == element), f"#n{len(self.names)}"
                )
                self.names[placeholder] = element
                out += ("." if out else "") + placeholder
        return out

    def operand(self, operand: Operand) -> str:
        if isinstance(operand, Path):
            return self.path(operand)
        if isinstance(operand, Literal):
            placeholder = f":v{len(self.values)}"
            self.values[placeholder] = operand.value
            return placeholder
        if isinstance(operand, Size):
            return f"size({self.path(operand.path)})"
        if isinstance(operand, IfNotExists):
            return f"if_not_exists({self.path(operand.path)}, {self.operand(operand.default)})"
        if isinstance(operand, ListAppend):
            return f"list_append({self.operand(operand.first)}, {self.operand(operand.second)})"
        return f"{self.operand(operand.left)} {operand.op} {self.operand(operand.right)}"

    def condition(self, node: Condition) -> str:
        if isinstance(node, Compare):
            return f"{self.operand(node.left)} {node.op} {self.operand(node.right)}"
        if isinstance(node, Between):
            return (
                f"{self.operand(node.operand)} BETWEEN {self.operand(node.low)} "
                f"AND {self.operand(node.high)}"
            )
        if isinstance(node, In):
            choices = ", ".join(self.operand(c) for c in node.choices)
            return f"{self.operand(node.operand)} IN ({choices})"
        if isinstance(node, Function):
            return f"{node.name}({', '.join(self.operand(a) for a in node.args)})"
        if isinstance(node, Not):
            return f"NOT ({self.condition(node.condition)})"
        op = "AND" if isinstance(node, And) else "OR"
        return f"({self.condition(node.left)}) {op} ({self.condition(node.right)})"

    def update(self, node: Update) -> str:
        clauses = []
        if node.set:
            actions = ", ".join(f"{self.path(p)} = {self.operand(v)}" for p, v in node.set)
            clauses.append(f"SET {actions}")
        if node.remove:
            clauses.append("REMOVE " + ", ".join(self.path(p) for p in node.remove))
        for word, pairs in (("ADD", node.add), ("DELETE", node.delete)):
            if pairs:
                actions = ", ".join(f"{self.path(p)} {self.operand(v)}" for p, v in pairs)
                clauses.append(f"{word} {actions}")
        return " ".join(clauses)

"""A recursive-descent parser for DynamoDB expressions.

Precedence, lowest first (DynamoDB developer guide): ``OR``, ``AND``, ``NOT``, then comparisons,
``BETWEEN``, ``IN`` and functions; parentheses group. Placeholders are resolved while parsing
against one request's ``ExpressionAttributeNames``/``Values`` (a :class:`Placeholders`), which
remembers which were used so the request can refuse unused ones, as DynamoDB does.
"""

from __future__ import annotations

from typing import Any

from .ast import (
    And,
    Arithmetic,
    Between,
    Compare,
    Condition,
    Function,
    IfNotExists,
    In,
    ListAppend,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    Size,
    Update,
)
from .errors import ValidationError
from .reserved import RESERVED
from .tokens import Token, tokenize
from .values import check_value

COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
}
MAX_IN = 100


class Placeholders:
    """One request's ``ExpressionAttributeNames`` and ``ExpressionAttributeValues``."""

    def __init__(self, names: object = None, values: object = None) -> None:
        if names is not None and not isinstance(names, dict):
            raise ValidationError("ExpressionAttributeNames must be a map")
        if values is not None and not isinstance(values, dict):
            raise ValidationError("ExpressionAttributeValues must be a map")
        if names == {}:
            raise ValidationError("ExpressionAttributeNames must not be empty")
        if values == {}:
            raise ValidationError("ExpressionAttributeValues must not be empty")
        self.names: dict[str, str] = dict(names or {})
        self.values: dict[str, Any] = dict(values or {})
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    def name(self, placeholder: str, what: str) -> str:
        if placeholder not in self.names:
            raise ValidationError(
                f"Invalid {what}: An expression attribute name used in the document path is "
                f"not defined; attribute name: {placeholder}"
            )
        self.used_names.add(placeholder)
        return self.names[placeholder]

    def value(self, placeholder: str, what: str) -> Literal:
        if placeholder not in self.values:
            raise ValidationError(
                f"Invalid {what}: An expression attribute value used in expression is not "
                f"defined; attribute value: {placeholder}"
            )
        self.used_values.add(placeholder)
        return Literal(check_value(self.values[placeholder]), placeholder)

    def check_all_used(self) -> None:
        unused_names = sorted(set(self.names) - self.used_names)
        if unused_names:
            raise ValidationError(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: "
                "{" + ", ".join(unused_names) + "}"
            )
        unused_values = sorted(set(self.values) - self.used_values)
        if unused_values:
            raise ValidationError(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: "
                "{" + ", ".join(unused_values) + "}"
            )


class Parser:
    def __init__(self, text: object, what: str, placeholders: Placeholders) -> None:
        if not isinstance(text, str):
            raise ValidationError(f"{what} must be a string")
        if not text.strip():
            raise ValidationError(f"Invalid {what}: The expression can not be empty;")
        self.text = text
        self.what = what
        self.placeholders = placeholders
        self.tokens = tokenize(text, what)
        self.index = 0

    # -- token helpers --------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, token: Token | None = None) -> ValidationError:
        token = token or self.token
        near = self.text[max(0, token.position - 10) : token.position + len(token.text) + 10]
        return ValidationError(
            f'Invalid {self.what}: Syntax error; token: "{token.text}", near: "{near}"'
        )

    def expect(self, text: str) -> None:
        if self.token.kind != "op" or self.token.text != text:
            raise self.error()
        self.index += 1

    def accept(self, text: str) -> bool:
        if self.token.kind == "op" and self.token.text == text:
            self.index += 1
            return True
        return False

    def accept_keyword(self, word: str) -> bool:
        if self.token.keyword(word):
            self.index += 1
            return True
        return False

    def end(self) -> None:
        if self.token.kind != "eof":
            raise self.error()

    # -- paths and operands -----------------------------------------------------------------

    def path(self) -> Path:
        elements: list[str | int] = [self.path_name()]
        while True:
            if self.accept("."):
                elements.append(self.path_name())
            elif self.accept("["):
                token = self.advance()
                if token.kind != "number":
                    raise self.error(token)
                elements.append(int(token.text))
                self.expect("]")
            else:
                return Path(tuple(elements))

    def path_name(self) -> str:
        token = self.advance()
        if token.kind == "placeholder":
            return self.placeholders.name(token.text, self.what)
        if token.kind == "name":
            if token.text.upper() in RESERVED:
                raise ValidationError(
                    f"Invalid {self.what}: Attribute name is a reserved keyword; reserved "
                    f"keyword: {token.text}"
                )
            return token.text
        raise self.error(token)

    def operand(self) -> Operand:
        token = self.token
        if token.kind == "value":
            self.index += 1
            return self.placeholders.value(token.text, self.what)
        if token.kind == "name" and self.tokens[self.index + 1].text == "(":
            if token.text != "size":
                raise self.function_error(token)
            self.index += 2
            path = self.path()
            self.expect(")")
            return Size(path)
        return self.path()

    def function_error(self, token: Token) -> ValidationError:
        if token.text in CONDITION_FUNCTIONS or token.text in ("if_not_exists", "list_append"):
            return ValidationError(
                f"Invalid {self.what}: The function is not allowed to be used this way in an "
                f"expression; function: {token.text}"
            )
        return ValidationError(
            f"Invalid {self.what}: Invalid function name; function: {token.text}"
        )

    # -- conditions -------------------------------------------------------------------------

    def condition(self) -> Condition:
        node = self.conjunction()
        while self.accept_keyword("OR"):
            node = Or(node, self.conjunction())
        return node

    def conjunction(self) -> Condition:
        node = self.negation()
        while self.accept_keyword("AND"):
            node = And(node, self.negation())
        return node

    def negation(self) -> Condition:
        if self.accept_keyword("NOT"):
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Condition:
        if self.accept("("):
            node = self.condition()
            self.expect(")")
            return node
        token = self.token
        if (
            token.kind == "name"
            and token.text in CONDITION_FUNCTIONS
            and (self.tokens[self.index + 1].text == "(")
        ):
            return self.function()
        left = self.operand()
        if self.token.kind == "op" and self.token.text in COMPARATORS:
            op = self.advance().text
            return Compare(op, left, self.operand())
        if self.accept_keyword("BETWEEN"):
            low = self.operand()
            if not self.accept_keyword("AND"):
                raise self.error()
            return Between(left, low, self.operand())
        if self.accept_keyword("IN"):
            self.expect("(")
            choices = [self.operand()]
            while self.accept(","):
                choices.append(self.operand())
            self.expect(")")
            if len(choices) > MAX_IN:
                raise ValidationError(
                    f"Invalid {self.what}: The IN operator is provided with too many operands; "
                    f"number of operands: {len(choices)}"
                )
            return In(left, tuple(choices))
        raise self.error()

    def function(self) -> Function:
        name = self.advance().text
        self.expect("(")
        args = [self.operand()]
        while self.accept(","):
            args.append(self.operand())
        self.expect(")")
        if len(args) != CONDITION_FUNCTIONS[name]:
            raise ValidationError(
                f"Invalid {self.what}: Incorrect number of operands for operator or function; "
                f"operator or function: {name}, number of operands: {len(args)}"
            )
        if not isinstance(args[0], Path):
            raise ValidationError(
                f"Invalid {self.what}: Operator or function requires a document path; "
                f"operator or function: {name}"
            )
        return Function(name, tuple(args))

    # -- updates ----------------------------------------------------------------------------

    def update(self) -> Update:
        clauses: dict[str, list[Any]] = {}
        while self.token.kind != "eof":
            token = self.advance()
            word = token.text.upper() if token.kind == "name" else ""
            if word not in ("SET", "REMOVE", "ADD", "DELETE"):
                raise self.error(token)
            if word in clauses:
                raise ValidationError(
                    f'Invalid {self.what}: The "{word}" section can only be used once in an '
                    "update expression;"
                )
            actions = clauses[word] = [self.action(word)]
            while self.accept(","):
                actions.append(self.action(word))
        return Update(
            set=tuple(clauses.get("SET", ())),
            remove=tuple(clauses.get("REMOVE", ())),
            add=tuple(clauses.get("ADD", ())),
            delete=tuple(clauses.get("DELETE", ())),
        )

    def action(self, word: str) -> Any:
        path = self.path()
        if word == "REMOVE":
            return path
        if word == "SET":
            self.expect("=")
            return path, self.set_value()
        token = self.token
        if token.kind != "value":
            raise self.error()
        self.index += 1
        return path, self.placeholders.value(token.text, self.what)

    def set_value(self) -> Operand:
        left = self.set_operand()
        if self.token.kind == "op" and self.token.text in "+-":
            op = self.advance().text
            return Arithmetic(op, left, self.set_operand())
        return left

    def set_operand(self) -> Operand:
        token = self.token
        if token.kind == "name" and self.tokens[self.index + 1].text == "(":
            if token.text == "if_not_exists":
                self.index += 2
                path = self.path()
                self.expect(",")
                default = self.set_operand()
                self.expect(")")
                return IfNotExists(path, default)
            if token.text == "list_append":
                self.index += 2
                first = self.set_operand()
                self.expect(",")
                second = self.set_operand()
                self.expect(")")
                return ListAppend(first, second)
            raise self.function_error(token)
        if token.kind == "value":
            self.index += 1
            return self.placeholders.value(token.text, self.what)
        return self.path()


def parse_condition(text: object, placeholders: Placeholders, what: str) -> Condition:
    parser = Parser(text, what, placeholders)
    node = parser.condition()
    parser.end()
    return node


def parse_projection(text: object, placeholders: Placeholders) -> list[Path]:
    parser = Parser(text, "ProjectionExpression", placeholders)
    paths = [parser.path()]
    while parser.accept(","):
        paths.append(parser.path())
    parser.end()
    return paths


def parse_update(text: object, placeholders: Placeholders) -> Update:
    parser = Parser(text, "UpdateExpression", placeholders)
    node = parser.update()
    parser.end()
    return node

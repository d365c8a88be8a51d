"""The tokenizer of DynamoDB's expression language (condition, key condition, filter,
projection and update expressions).

Tokens: attribute names (``price``), name placeholders (``#p``), value placeholders (``:v``),
list indexes (digits inside ``[...]``), comparators (``= <> < <= > >=``), ``+ - ( ) [ ] , .``.
Keywords (``AND OR NOT BETWEEN IN SET REMOVE ADD DELETE``) are names matched case-insensitively
by the parser; function names (``attribute_exists``...) are case-sensitive, as in DynamoDB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ValidationError

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<placeholder>\#[A-Za-z0-9_]+)
  | (?P<value>:[A-Za-z0-9_]+)
  | (?P<number>[0-9]+)
  | (?P<op><>|<=|>=|[=<>+\-(),.\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, placeholder, value, number, op, eof
    text: str
    position: int

    def keyword(self, word: str) -> bool:
        return self.kind == "name" and self.text.upper() == word


def tokenize(text: str, what: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``eof`` token; ValidationError on a bad character."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValidationError(
                f'Invalid {what}: Syntax error; token: "{text[position]}", near: '
                f'"{text[max(0, position - 10) : position + 10]}"'
            )
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens

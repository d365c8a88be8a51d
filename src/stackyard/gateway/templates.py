"""Mapping templates: a small, safe subset of API Gateway's Velocity (VTL) templates.

:class:`Template` compiles a template once (a bad one raises :class:`TemplateSyntaxError`) and
renders it against a mapping of root variables (``input``, ``context``, ``stageVariables``,
``util``, ``request``; see :mod:`.transform`). Nothing is evaluated as Python: references walk
dicts and lists and call a fixed list of methods. Rendering never raises; a missing value
renders as the empty string (Velocity would print the reference itself).

The subset:

- references ``$name``, ``$!name``, ``${name}``, followed by ``.property``, ``.method(args)``
  and ``[index]``; a property name may contain ``-`` (``$request.header.x-api-key``); write
  ``${context.stage}-x`` to put a ``-`` after a reference;
- ``#if(cond)`` / ``#elseif(cond)`` / ``#else`` / ``#end``; ``#foreach($x in expr)`` … ``#end``
  (at most 1000 iterations, 100,000 in one rendering; ``$foreach.hasNext``,
  ``$foreach.index``, ``$foreach.count``, ``$foreach.first``, ``$foreach.last``);
  ``#set($x = expr)``; ``## line`` and ``#* block *#`` comments; ``\\$`` and ``\\#`` for a
  literal ``$`` and ``#``;
- expressions: references, ``'strings'`` / ``"strings"`` (not interpolated), numbers,
  ``true``/``false``/``null``, ``[lists]``, ``!``, ``&&``, ``||``, ``==``, ``!=``, ``<``,
  ``<=``, ``>``, ``>=``, parentheses; only ``null`` and ``false`` are false;
- methods: on strings ``length() isEmpty() toLowerCase() toUpperCase() trim() contains(s)
  startsWith(s) endsWith(s) replace(a, b) equals(x)``; on lists ``size() isEmpty() get(i)
  contains(x)``; on maps ``size() isEmpty() get(k) containsKey(k) keySet()``; plus the objects
  given by the caller (``$input``, ``$util``: :mod:`.template_values`).

Maps and lists render as JSON; ``true``/``false`` in lower case; ``null`` as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .template_values import (
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_STEPS,
    Const,
    Env,
    Foreach,
    If,
    ListExpr,
    Op,
    Output,
    Ref,
    Set,
    Text,
    to_text,
)

__all__ = [
    "MAX_ITERATIONS",
    "MAX_OUTPUT",
    "MAX_STEPS",
    "Template",
    "TemplateSyntaxError",
    "to_text",
]

_MAX_DEPTH = 48
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*[A-Za-z0-9_]|[A-Za-z_]")
_DIRECTIVE = re.compile(
    r"#(?:\{(if|elseif|else|end|foreach|set)\}|(if|elseif|else|end|foreach|set)\b)"
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class TemplateSyntaxError(ValueError):
    """A template that cannot be compiled; ``position`` is the offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at offset {position})")
        self.position = position


# -- parsing ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, position: int | None = None) -> TemplateSyntaxError:
        return TemplateSyntaxError(message, self.pos if position is None else position)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail("template nested too deeply")

    # text level

    def block(self, stops: tuple[str, ...]) -> tuple[list[Any], str | None]:
        src = self.src
        nodes: list[Any] = []
        text: list[str] = []
        while self.pos < len(src):
            char = src[self.pos]
            if char == "\\" and src.startswith(("\\$", "\\#"), self.pos):
                text.append(src[self.pos + 1])
                self.pos += 2
            elif char == "$":
                ref = self.reference(in_text=True)
                if ref is None:
                    text.append("$")
                    self.pos += 1
                else:
                    self.flush(text, nodes)
                    nodes.append(Output(ref))
            elif char == "#":
                directive = self.directive_name()
                if directive is None:
                    if not self.comment():
                        text.append("#")
                        self.pos += 1
                    continue
                self.flush(text, nodes)
                if directive in ("elseif", "else", "end"):
                    if directive not in stops:
                        raise self.fail(f"unexpected #{directive}")
                    return nodes, directive
                nodes.append(self.statement(directive))
            else:
                end = _next_special(src, self.pos)
                text.append(src[self.pos : end])
                self.pos = end
        self.flush(text, nodes)
        if stops:
            raise self.fail("missing #end")
        return nodes, None

    @staticmethod
    def flush(text: list[str], nodes: list[Any]) -> None:
        if text:
            nodes.append(Text("".join(text)))
            text.clear()

    def comment(self) -> bool:
        src = self.src
        if src.startswith("##", self.pos):
            end = src.find("\n", self.pos)
            self.pos = len(src) if end < 0 else end
            return True
        if src.startswith("#*", self.pos):
            end = src.find("*#", self.pos + 2)
            if end < 0:
                raise self.fail("unclosed #* comment")
            self.pos = end + 2
            return True
        return False

    def directive_name(self) -> str | None:
        match = _DIRECTIVE.match(self.src, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group(1) or match.group(2)

    def statement(self, directive: str) -> Any:
        self.nest()
        try:
            if directive == "if":
                return self.if_statement()
            if directive == "foreach":
                self.open_paren()
                var = self.variable()
                self.skip_space()
                if not self.src.startswith("in", self.pos):
                    raise self.fail("expected 'in'")
                self.pos += 2
                items = self.expression()
                self.close_paren()
                body, _ = self.block(("end",))
                return Foreach(var, items, body)
            self.open_paren()
            var = self.variable()
            self.skip_space()
            if not self.src.startswith("=", self.pos):
                raise self.fail("expected '='")
            self.pos += 1
            expr = self.expression()
            self.close_paren()
            return Set(var, expr)
        finally:
            self.depth -= 1

    def if_statement(self) -> If:
        branches: list[tuple[Any, list[Any]]] = []
        while True:
            self.open_paren()
            condition = self.expression()
            self.close_paren()
            body, stop = self.block(("elseif", "else", "end"))
            branches.append((condition, body))
            if stop == "end":
                return If(branches, [])
            if stop == "else":
                otherwise, _ = self.block(("end",))
                return If(branches, otherwise)

    def open_paren(self) -> None:
        self.skip_space()
        if not self.src.startswith("(", self.pos):
            raise self.fail("expected '('")
        self.pos += 1

    def close_paren(self) -> None:
        self.skip_space()
        if not self.src.startswith(")", self.pos):
            raise self.fail("expected ')'")
        self.pos += 1

    def variable(self) -> str:
        self.skip_space()
        if not self.src.startswith("$", self.pos):
            raise self.fail("expected a $variable")
        match = _IDENT.match(self.src, self.pos + 1)
        if match is None:
            raise self.fail("expected a variable name")
        self.pos = match.end()
        return match.group()

    def skip_space(self) -> None:
        src = self.src
        while self.pos < len(src) and src[self.pos] in " \t\r\n":
            self.pos += 1

    # references

    def reference(self, *, in_text: bool) -> Ref | None:
        src = self.src
        start = self.pos
        pos = start + 1
        if src.startswith("!", pos):
            pos += 1
        formal = src.startswith("{", pos)
        if formal:
            pos += 1
        match = _IDENT.match(src, pos)
        if match is None:
            if in_text:
                return None
            raise self.fail("expected a reference name", start)
        self.pos = match.end()
        steps = self.steps(in_text=in_text and not formal)
        if formal:
            if not src.startswith("}", self.pos):
                raise self.fail("expected '}'")
            self.pos += 1
        return Ref(match.group(), steps)

    def steps(self, *, in_text: bool) -> list[tuple[str, Any]]:
        src = self.src
        steps: list[tuple[str, Any]] = []
        while self.pos < len(src):
            if src[self.pos] == "." and (prop := _PROPERTY.match(src, self.pos + 1)):
                self.pos = prop.end()
                if src.startswith("(", self.pos):
                    self.pos += 1
                    steps.append(("call", (prop.group(), self.arguments(")"))))
                else:
                    steps.append(("prop", prop.group()))
            elif src[self.pos] == "[" and not in_text:
                self.pos += 1
                self.nest()
                steps.append(("index", self.expression()))
                self.depth -= 1
                self.skip_space()
                if not src.startswith("]", self.pos):
                    raise self.fail("expected ']'")
                self.pos += 1
            else:
                break
        return steps

    def arguments(self, close: str) -> list[Any]:
        self.nest()
        args: list[Any] = []
        self.skip_space()
        if self.src.startswith(close, self.pos):
            self.pos += 1
            self.depth -= 1
            return args
        while True:
            args.append(self.expression())
            self.skip_space()
            if self.src.startswith(",", self.pos):
                self.pos += 1
            elif self.src.startswith(close, self.pos):
                self.pos += 1
                self.depth -= 1
                return args
            else:
                raise self.fail(f"expected ',' or {close!r}")

    # expressions

    def expression(self) -> Any:
        self.nest()
        left = self.conjunction()
        while self.operator("||"):
            left = Op("||", left, self.conjunction())
        self.depth -= 1
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.operator("&&"):
            left = Op("&&", left, self.negation())
        return left

    def negation(self) -> Any:
        if self.operator("!"):
            self.nest()
            operand = self.negation()
            self.depth -= 1
            return Op("!", operand, None)
        left = self.primary()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.operator(op):
                return Op(op, left, self.primary())
        return left

    def operator(self, op: str) -> bool:
        self.skip_space()
        if not self.src.startswith(op, self.pos):
            return False
        if op == "!" and self.src.startswith("!=", self.pos):
            return False
        if op in ("<", ">") and self.src.startswith("=", self.pos + 1):
            return False
        self.pos += len(op)
        return True

    def primary(self) -> Any:
        self.skip_space()
        src = self.src
        if self.pos >= len(src):
            raise self.fail("unexpected end of expression")
        char = src[self.pos]
        if char == "(":
            self.pos += 1
            inner = self.expression()
            self.close_paren()
            return inner
        if char == "$":
            return self.reference(in_text=False)
        if char in "'\"":
            end = src.find(char, self.pos + 1)
            if end < 0:
                raise self.fail("unclosed string")
            value = src[self.pos + 1 : end]
            self.pos = end + 1
            return Const(value)
        if char == "[":
            self.pos += 1
            return ListExpr(self.arguments("]"))
        number = _NUMBER.match(src, self.pos)
        if number is not None:
            self.pos = number.end()
            text = number.group()
            return Const(float(text) if "." in text else int(text))
        word = _IDENT.match(src, self.pos)
        if word is not None and word.group() in ("true", "false", "null"):
            self.pos = word.end()
            return Const({"true": True, "false": False, "null": None}[word.group()])
        raise self.fail(f"unexpected {char!r} in expression")


def _next_special(src: str, pos: int) -> int:
    ends = [i for i in (src.find("$", pos), src.find("#", pos), src.find("\\", pos)) if i >= 0]
    end = min(ends) if ends else len(src)
    return end if end > pos else pos + 1


class Template:
    """A compiled mapping template (see the module docstring)."""

    __slots__ = ("_nodes", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        parser = _Parser(source)
        self._nodes, _ = parser.block(())

    @property
    def is_literal(self) -> bool:
        """True when the template has no references or directives."""
        return all(isinstance(node, Text) for node in self._nodes)

    def render(self, roots: Mapping[str, Any]) -> str:
        """The template's text for these root variables; never raises."""
        env = Env(roots)
        for node in self._nodes:
            if env.size >= MAX_OUTPUT:
                break
            try:
                node.run(env)
            except Exception:  # a runtime surprise renders as nothing, never as a 500
                continue
        return "".join(env.out)

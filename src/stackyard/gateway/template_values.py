"""How mapping templates evaluate: values, the methods a template may call, the compiled nodes,
and the ``$input`` and ``$util`` objects (see :mod:`.templates` for the language).

Nothing here evaluates Python: references walk dicts and lists, and only the methods listed in
:func:`call_method` (or an object's own ``prop``/``call``) can be reached.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote_plus, unquote_plus

MAX_ITERATIONS = 1000
MAX_OUTPUT = 10 * 1024 * 1024
MAX_STEPS = 100_000  # loop iterations in one rendering, nested loops included
_STRING_METHODS: dict[str, Callable[[str], str]] = {
    "toLowerCase": str.lower,
    "toUpperCase": str.upper,
    "trim": str.strip,
}
_JSON_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[['\"]([^'\"]*)['\"]\]|\[(-?\d+)\]")
_UNSET = object()


class Scriptable(Protocol):
    """An object a template may read properties of and call methods on."""

    def prop(self, name: str) -> Any: ...

    def call(self, name: str, args: list[Any]) -> Any: ...


# -- evaluation ---------------------------------------------------------------------------------


class Env:
    __slots__ = ("budget", "locals", "out", "roots", "size")

    def __init__(self, roots: Mapping[str, Any]) -> None:
        self.roots = roots
        self.locals: dict[str, Any] = {}
        self.out: list[str] = []
        self.size = 0
        self.budget = MAX_STEPS

    def lookup(self, name: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        return self.roots.get(name)

    def write(self, text: str) -> None:
        if self.size < MAX_OUTPUT:
            self.out.append(text)
            self.size += len(text)


def to_text(value: Any) -> str:
    """How a value renders: null empty, booleans lower case, maps and lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        try:
            return json.dumps(value, default=str)
        except (ValueError, RecursionError):
            return ""
    return ""


def truthy(value: Any) -> bool:
    return value is not None and value is not False


def get_property(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    if hasattr(value, "prop") and hasattr(value, "call"):
        return value.prop(name)
    return None


def call_method(value: Any, name: str, args: list[Any]) -> Any:
    n = len(args)
    if isinstance(value, str):
        if n == 0:
            if name in ("length", "size"):
                return len(value)
            if name == "isEmpty":
                return value == ""
            if name == "toString":
                return value
            method = _STRING_METHODS.get(name)
            return method(value) if method is not None else None
        arg = args[0]
        if name == "equals" and n == 1:
            return value == arg
        if not isinstance(arg, str):
            return None
        if n == 1 and name == "contains":
            return arg in value
        if n == 1 and name == "startsWith":
            return value.startswith(arg)
        if n == 1 and name == "endsWith":
            return value.endswith(arg)
        if n == 2 and name == "replace" and isinstance(args[1], str):
            return value.replace(arg, args[1])
        return None
    if isinstance(value, list):
        if n == 0 and name in ("size", "isEmpty"):
            return len(value) if name == "size" else not value
        if n == 1 and name == "get":
            index = args[0]
            ok = isinstance(index, int) and not isinstance(index, bool)
            return value[index] if ok and -len(value) <= index < len(value) else None
        if n == 1 and name == "contains":
            return args[0] in value
        return None
    if isinstance(value, Mapping):
        if n == 0 and name in ("size", "isEmpty", "keySet"):
            if name == "keySet":
                return list(value)
            return len(value) if name == "size" else not value
        if n == 1 and name in ("get", "containsKey") and isinstance(args[0], str):
            return value.get(args[0]) if name == "get" else args[0] in value
        return None
    if hasattr(value, "prop") and hasattr(value, "call"):
        return value.call(name, args)
    return None


class Ref:
    __slots__ = ("name", "steps")

    def __init__(self, name: str, steps: list[tuple[str, Any]]) -> None:
        self.name = name
        self.steps = steps

    def eval(self, env: Env) -> Any:
        value = env.lookup(self.name)
        for kind, arg in self.steps:
            if value is None:
                return None
            if kind == "prop":
                value = get_property(value, arg)
            elif kind == "call":
                name, params = arg
                value = call_method(value, name, [p.eval(env) for p in params])
            else:
                key = arg.eval(env)
                if isinstance(value, Mapping) and isinstance(key, str):
                    value = value.get(key)
                elif isinstance(value, list) and isinstance(key, int):
                    value = value[key] if -len(value) <= key < len(value) else None
                else:
                    value = None
        return value


class Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def eval(self, env: Env) -> Any:
        return self.value


class ListExpr:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def eval(self, env: Env) -> Any:
        return [item.eval(env) for item in self.items]


class Op:
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Any, right: Any) -> None:
        self.op, self.left, self.right = op, left, right

    def eval(self, env: Env) -> Any:
        op = self.op
        if op == "!":
            return not truthy(self.left.eval(env))
        if op == "&&":
            return truthy(self.left.eval(env)) and truthy(self.right.eval(env))
        if op == "||":
            return truthy(self.left.eval(env)) or truthy(self.right.eval(env))
        a, b = self.left.eval(env), self.right.eval(env)
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
        if not numbers and not (isinstance(a, str) and isinstance(b, str)):
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


# -- statements ---------------------------------------------------------------------------------


class Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def run(self, env: Env) -> None:
        env.write(self.text)


class Output:
    __slots__ = ("ref",)

    def __init__(self, ref: Ref) -> None:
        self.ref = ref

    def run(self, env: Env) -> None:
        env.write(to_text(self.ref.eval(env)))


class If:
    __slots__ = ("branches", "otherwise")

    def __init__(self, branches: list[tuple[Any, list[Any]]], otherwise: list[Any]) -> None:
        self.branches = branches
        self.otherwise = otherwise

    def run(self, env: Env) -> None:
        for condition, body in self.branches:
            if truthy(condition.eval(env)):
                run_nodes(body, env)
                return
        run_nodes(self.otherwise, env)


class Foreach:
    __slots__ = ("body", "items", "var")

    def __init__(self, var: str, items: Any, body: list[Any]) -> None:
        self.var, self.items, self.body = var, items, body

    def run(self, env: Env) -> None:
        items = self.items.eval(env)
        if isinstance(items, Mapping):
            items = list(items.values())
        if not isinstance(items, list):
            return
        items = items[:MAX_ITERATIONS]
        missing = object()
        saved = env.locals.get(self.var, missing), env.locals.get("foreach", missing)
        for index, item in enumerate(items):
            env.budget -= 1
            if env.budget < 0:
                break
            env.locals[self.var] = item
            env.locals["foreach"] = {
                "index": index,
                "count": index + 1,
                "hasNext": index + 1 < len(items),
                "first": index == 0,
                "last": index + 1 == len(items),
            }
            run_nodes(self.body, env)
        for name, value in zip((self.var, "foreach"), saved, strict=True):
            if value is missing:
                env.locals.pop(name, None)
            else:
                env.locals[name] = value


class Set:
    __slots__ = ("expr", "var")

    def __init__(self, var: str, expr: Any) -> None:
        self.var, self.expr = var, expr

    def run(self, env: Env) -> None:
        env.locals[self.var] = self.expr.eval(env)


def run_nodes(nodes: list[Any], env: Env) -> None:
    for node in nodes:
        if env.size >= MAX_OUTPUT:
            return
        node.run(env)


# -- $input and $util ------------------------------------------------------------------------


def _json_path(document: Any, path: Any) -> Any:
    """The value at a JSONPath subset: ``$``, ``.name``, ``['name']``, ``[index]``."""
    if not isinstance(path, str) or not path.startswith("$"):
        return None
    value = document
    for name, quoted, index in re.findall(
        r"\.([^.\[\]]+)|\[['\"]([^'\"]*)['\"]\]|\[(-?\d+)\]", path
    ):
        key = name or quoted
        if key:
            value = value.get(key) if isinstance(value, dict) else None
        elif isinstance(value, list) and -len(value) <= int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    return value


class Input:
    """``$input``: the body being mapped and the request's parameters."""

    __slots__ = ("_body", "_doc", "_params")

    def __init__(self, body: bytes, params: dict[str, Mapping[str, str]]) -> None:
        self._body = body
        self._params = params
        self._doc: Any = _UNSET

    def document(self) -> Any:
        if self._doc is _UNSET:
            try:
                self._doc = json.loads(self._body) if self._body.strip() else None
            except (ValueError, RecursionError):
                self._doc = None
        return self._doc

    def prop(self, name: str) -> Any:
        if name == "body":
            return self._body.decode("utf-8", "replace")
        return None

    def call(self, name: str, args: list[Any]) -> Any:
        if name == "json" and len(args) == 1:
            value = _json_path(self.document(), args[0])
            try:
                return "" if value is None else json.dumps(value)
            except (ValueError, RecursionError):
                return ""
        if name == "path" and len(args) == 1:
            return _json_path(self.document(), args[0])
        if name == "params" and not args:
            return dict(self._params)
        if name == "params" and len(args) == 1 and isinstance(args[0], str):
            for where in ("path", "querystring", "header"):
                value = self._params[where].get(args[0])
                if value is not None:
                    return value
        return None


class Util:
    """``$util``."""

    def prop(self, name: str) -> Any:
        return None

    def call(self, name: str, args: list[Any]) -> Any:
        if len(args) != 1:
            return None
        text = to_text(args[0])
        if name == "escapeJavaScript":
            return json.dumps(text)[1:-1].replace("'", "\\'")
        if name == "urlEncode":
            return quote_plus(text)
        if name == "urlDecode":
            return unquote_plus(text)
        if name == "base64Encode":
            return base64.b64encode(text.encode()).decode()
        if name == "base64Decode":
            try:
                return base64.b64decode(text, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        if name == "parseJson":
            try:
                return json.loads(text)
            except (ValueError, RecursionError):
                return None
        return None


UTIL = Util()

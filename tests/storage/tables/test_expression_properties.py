"""Property tests of the expression tokenizer and parser, the number rules and the key encoding."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.storage.tables.ast import (
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
    Or,
    Path,
    Renderer,
    Size,
    Update,
)
from stackyard.storage.tables.errors import ValidationError
from stackyard.storage.tables.evaluate import matches
from stackyard.storage.tables.parser import (
    Placeholders,
    parse_condition,
    parse_projection,
    parse_update,
)
from stackyard.storage.tables.values import (
    encode_number,
    format_number,
    normalise_number,
    parse_number,
)

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
paths = st.builds(
    lambda first, rest: Path((first, *rest)),
    names,
    st.lists(st.one_of(names, st.integers(0, 20)), max_size=3),
)
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-1000, 1000)),
    st.just({"BOOL": True}),
    st.just({"NULL": True}),
)
literals = st.builds(Literal, scalars)
operands = st.one_of(paths, literals, st.builds(Size, paths))
comparators = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
leaves = st.one_of(
    st.builds(Compare, comparators, operands, operands),
    st.builds(Between, operands, operands, operands),
    st.builds(lambda o, c: In(o, tuple(c)), operands, st.lists(operands, min_size=1, max_size=4)),
    st.builds(lambda p: Function("attribute_exists", (p,)), paths),
    st.builds(lambda p: Function("attribute_not_exists", (p,)), paths),
    st.builds(lambda p, v: Function("begins_with", (p, v)), paths, operands),
    st.builds(lambda p, v: Function("contains", (p, v)), paths, operands),
    st.builds(
        lambda p, t: Function("attribute_type", (p, Literal({"S": t}))),
        paths,
        st.sampled_from(["S", "N", "M"]),
    ),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
    ),
    max_leaves=8,
)
set_values = st.recursive(
    st.one_of(paths, literals),
    lambda inner: st.one_of(
        st.builds(IfNotExists, paths, inner),
        st.builds(ListAppend, inner, inner),
    ),
    max_leaves=3,
)
set_actions = st.one_of(
    set_values, st.builds(Arithmetic, st.sampled_from("+-"), set_values, set_values)
)
updates = st.builds(
    lambda s, r, a, d: Update(tuple(s), tuple(r), tuple(a), tuple(d)),
    st.lists(st.tuples(paths, set_actions), max_size=3),
    st.lists(paths, max_size=3),
    st.lists(st.tuples(paths, st.builds(Literal, st.just({"N": "1"}))), max_size=2),
    st.lists(st.tuples(paths, st.builds(Literal, st.just({"SS": ["a"]}))), max_size=2),
).filter(lambda u: bool(u.paths()))


def reparse_condition(node: Condition) -> Condition:
    renderer = Renderer()
    text = renderer.condition(node)
    placeholders = Placeholders(renderer.names or None, renderer.values or None)
    parsed = parse_condition(text, placeholders, "ConditionExpression")
    placeholders.check_all_used()
    return parsed


@given(conditions)
@settings(max_examples=300, deadline=None)
def test_conditions_round_trip(node: Condition) -> None:
    assert reparse_condition(node) == node


@given(updates)
@settings(max_examples=200, deadline=None)
def test_updates_round_trip(node: Update) -> None:
    renderer = Renderer()
    text = renderer.update(node)
    placeholders = Placeholders(renderer.names or None, renderer.values or None)
    assert parse_update(text, placeholders) == node


@given(st.lists(paths, min_size=1, max_size=5))
def test_projections_round_trip(items: list[Path]) -> None:
    renderer = Renderer()
    text = ", ".join(renderer.path(p) for p in items)
    assert parse_projection(text, Placeholders(renderer.names)) == items


FRAGMENTS = [
    *"ab#:v0 ()[],.=<>+-_",
    "AND ",
    "OR ",
    "NOT ",
    "BETWEEN ",
    "IN ",
    "SET ",
    "REMOVE ",
    "size",
    "contains",
    "if_not_exists",
    "list_append",
    "#a",
    ":v",
]


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
@settings(max_examples=500, deadline=None)
def test_any_text_parses_or_is_a_validation_error(text: str) -> None:
    placeholders = Placeholders({"#a": "a", "#v": "v"}, {":v": {"S": "x"}, ":a": {"N": "1"}})
    for parse in (
        lambda: parse_condition(text, placeholders, "ConditionExpression"),
        lambda: parse_update(text, placeholders),
        lambda: parse_projection(text, placeholders),
    ):
        with contextlib.suppress(ValidationError):
            parse()


@given(conditions, st.dictionaries(st.sampled_from(["a", "b", "c"]), scalars, max_size=3))
@settings(max_examples=200, deadline=None)
def test_evaluation_never_crashes(node: Condition, item: dict[str, Any]) -> None:
    try:
        assert matches(item, node) in (True, False)
        assert matches(item, Not(node)) is not matches(item, node)
    except ValidationError:
        pass  # e.g. size() of a number, BETWEEN with bounds reversed


numbers = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: d.is_zero() or -130 <= d.adjusted() <= 125
)


@given(numbers, numbers)
@settings(max_examples=500)
def test_number_encoding_keeps_order(a: Decimal, b: Decimal) -> None:
    try:
        x, y = parse_number(str(a)), parse_number(str(b))
    except ValidationError:
        return  # more than 38 significant digits
    assert (encode_number(x) < encode_number(y)) == (x < y)
    assert (encode_number(x) == encode_number(y)) == (x == y)


@given(numbers)
def test_normalised_numbers_keep_their_value(number: Decimal) -> None:
    try:
        text = normalise_number(str(number))
    except ValidationError:
        assert len(number.normalize(__import__("decimal").Context(prec=1000)).as_tuple()[1]) > 38
        return
    assert Decimal(text) == number
    assert normalise_number(text) == text
    assert "E" not in text and (text == "0" or not text.endswith(("0", ".")) or "." not in text)


@pytest.mark.parametrize("text", ["1e5", " 1", "1 ", "", "NaN", "Infinity", "0x10"])
def test_numbers_dynamodb_refuses(text: str) -> None:
    if text == "1e5":
        assert format_number(parse_number(text)) == "100000"
        return
    with pytest.raises(ValidationError):
        parse_number(text)

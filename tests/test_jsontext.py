"""Compact JSON text: exactly what json.dumps writes, for any plain value."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.jsontext import dumps, text

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_dumps_writes_what_json_dumps_writes(value: object) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"))


@given(st.text())
def test_text_is_a_json_string(value: str) -> None:
    assert text(value) == json.dumps(value) and text(value).isascii()


def test_a_value_json_cannot_write_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"when": object()})
    assert dumps({"a": [1, {"b": None}]}) == '{"a":[1,{"b":null}]}'  # the encoder is reusable

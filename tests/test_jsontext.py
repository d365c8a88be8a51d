"""Compact JSON text: exactly what json.dumps writes, for any plain value; JSON read from bytes
exactly as json.loads reads it, for any bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.jsontext import dumps, loads, text

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


def _outcome(read: object, data: bytes) -> tuple[str, str]:
    """What reading ``data`` gives, comparable even for NaN: the value written back, or the
    exception's type and message."""
    try:
        value = read(data)  # type: ignore[operator]
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "value", json.dumps(value)


def _encodings(value: object, pad: str) -> list[bytes]:
    document = pad + json.dumps(value, ensure_ascii=False) + pad
    return [
        document.encode(),
        document.encode("utf-8-sig"),
        document.encode("utf-16"),
        document.encode("utf-32-le"),
        json.dumps(value).encode() + b"  {}",  # more after the value
    ]


@given(values, st.sampled_from(["", " ", "\n\t", "\r\n "]))
def test_loads_reads_what_json_loads_reads(value: object, pad: str) -> None:
    for data in _encodings(value, pad):
        assert _outcome(loads, data) == _outcome(json.loads, data)


@given(st.binary(max_size=40))
def test_loads_fails_as_json_loads_fails_on_any_bytes(data: bytes) -> None:
    assert _outcome(loads, data) == _outcome(json.loads, data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"statusCode": 200, "body": "\\ud83d\\ude00 \\ud800"}',  # pairs and a lone surrogate
        b"\xed\xa0\x80",  # an encoded surrogate: not strict UTF-8
        b'"\xed\xa0\x80"',
        b"NaN",
        b"[1, 2",
        b"",
        b"   ",
        b'{"a": 1} x',
        b"12345678901234567890123456789",
    ],
)
def test_loads_edge_cases(data: bytes) -> None:
    assert _outcome(loads, data) == _outcome(json.loads, data)

"""DynamoDB attribute values: validation, number normalisation, sizes, comparison and key encoding.

Values travel and are stored in DynamoDB's JSON form (``{"S": "x"}``, ``{"N": "1.5"}``,
``{"B": "<base64>"}``, ``{"L": [...]}``, ``{"M": {...}}``, ``{"SS": [...]}``...). Numbers are
checked and normalised as DynamoDB does: at most 38 significant digits, magnitude between
1E-130 and 9.9999999999999999999999999999999999999E+125, leading and trailing zeros trimmed,
no exponent in the answer (``"1.50"`` and ``"15E-1"`` are both stored as ``"1.5"``).

Key attributes are encoded to bytes whose ``memcmp`` order is DynamoDB's order: strings by
their UTF-8 bytes, binary by its bytes, numbers by value (see :func:`encode_number`), so a
Query's sort-key range is a range scan of the store's index.
"""

from __future__ import annotations

import base64
import binascii
import decimal
from decimal import Decimal
from typing import Any

from .errors import ValidationError

Value = dict[str, Any]  # one attribute value in wire form, e.g. {"S": "x"}
Item = dict[str, Value]

TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"})
SET_TYPES = {"SS": "S", "NS": "N", "BS": "B"}
MAX_ITEM_SIZE = 400 * 1024
MAX_DEPTH = 32

CONTEXT = decimal.Context(
    prec=38,
    Emin=-128,
    Emax=126,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[
        decimal.Inexact,
        decimal.Rounded,
        decimal.Overflow,
        decimal.Underflow,
        decimal.InvalidOperation,
        decimal.Clamped,
    ],
)


def parse_number(text: object) -> Decimal:
    """A wire number as a Decimal, checked against DynamoDB's precision and range."""
    if not isinstance(text, str):
        raise ValidationError("NUMBER_VALUE cannot be converted to String")
    stripped = text.strip()
    try:
        number = Decimal(stripped)
    except decimal.InvalidOperation:
        raise ValidationError("A value provided cannot be converted into a number") from None
    if not number.is_finite() or stripped != text or not stripped:
        raise ValidationError("A value provided cannot be converted into a number")
    return check_number(number)


def check_number(number: Decimal) -> Decimal:
    """``number`` normalised, or ValidationError if DynamoDB could not store it."""
    if number.is_zero():
        return Decimal(0)
    sign, digits, exponent = number.normalize(decimal.Context(prec=1000)).as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > 38:
        raise ValidationError("Attempting to store more than 38 significant digits in a Number")
    adjusted = len(digits) + exponent - 1  # power of ten of the leading digit
    if adjusted > 125:
        raise ValidationError(
            "Number overflow. Attempting to store a number with magnitude larger than "
            "supported range"
        )
    if adjusted < -130:
        raise ValidationError(
            "Number underflow. Attempting to store a number with magnitude smaller than "
            "supported range"
        )
    return Decimal((sign, digits, exponent))


def format_number(number: Decimal) -> str:
    """DynamoDB's text of a normalised number: plain notation, no trailing zeros."""
    if number.is_zero():
        return "0"
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    if exponent >= 0:
        text += "0" * exponent
    elif -exponent >= len(text):
        text = "0." + "0" * (-exponent - len(text)) + text
    else:
        text = text[:exponent] + "." + text[exponent:]
    return "-" + text if sign else text


def normalise_number(text: object) -> str:
    return format_number(parse_number(text))


def decode_binary(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValidationError("Binary values must be base64-encoded strings")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("Invalid base64 in a binary value") from None


def encode_binary(data: bytes) -> str:
    return base64.b64encode(data).decode()


def value_type(value: Value) -> str:
    return next(iter(value))


def check_value(value: object, depth: int = 0) -> Value:
    """A wire attribute value checked and normalised (numbers, sets without duplicates)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValidationError(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one "
            "of the supported datatypes"
            if isinstance(value, dict) and value
            else "Supplied AttributeValue is empty, must contain exactly one of the supported "
            "datatypes"
        )
    if depth > MAX_DEPTH:
        raise ValidationError("Nesting Levels have exceeded supported limits")
    kind, inner = next(iter(value.items()))
    if kind == "S":
        if not isinstance(inner, str):
            raise ValidationError("STRING_VALUE must be a string")
        return value
    if kind == "N":
        return {"N": normalise_number(inner)}
    if kind == "B":
        decode_binary(inner)
        return value
    if kind == "BOOL":
        if not isinstance(inner, bool):
            raise ValidationError("BOOL must be true or false")
        return value
    if kind == "NULL":
        if inner is not True:
            raise ValidationError(
                "One or more parameter values were invalid: Null attribute value types must "
                "have the value of true"
            )
        return value
    if kind == "L":
        if not isinstance(inner, list):
            raise ValidationError("L must be a list")
        return {"L": [check_value(v, depth + 1) for v in inner]}
    if kind == "M":
        if not isinstance(inner, dict):
            raise ValidationError("M must be a map")
        return {"M": {str(k): check_value(v, depth + 1) for k, v in inner.items()}}
    if kind in SET_TYPES:
        return {kind: check_set(kind, inner)}
    raise ValidationError(f"Supplied AttributeValue has an unknown datatype: {kind}")


def check_set(kind: str, members: object) -> list[str]:
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ValidationError(f"{kind} must be a list of strings")
    if not members:
        raise ValidationError(
            "One or more parameter values were invalid: An number set  may not be empty"
            if kind == "NS"
            else f"One or more parameter values were invalid: An {'string' if kind == 'SS' else 'binary'} set  may not be empty"  # noqa: E501
        )
    if kind == "NS":
        members = [normalise_number(m) for m in members]
    elif kind == "BS":
        for member in members:
            decode_binary(member)
    if len(set(members)) != len(members):
        raise ValidationError(f"Input collection {members} contains duplicates.")
    return list(members)


def check_item(item: object, what: str = "Item") -> Item:
    if not isinstance(item, dict):
        raise ValidationError(f"{what} must be a map of attribute values")
    checked: Item = {}
    for name, value in item.items():
        if not name:
            raise ValidationError(
                "One or more parameter values were invalid: An AttributeValue may not contain "
                "an empty attribute name"
            )
        checked[name] = check_value(value)
    return checked


# -- sizes (DynamoDB's item size rules) --------------------------------------------------------


def number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value: Value) -> int:
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(decode_binary(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(m.encode()) for m in inner)
    if kind == "NS":
        return sum(number_size(m) for m in inner)
    return sum(len(decode_binary(m)) for m in inner)


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


# -- comparison -------------------------------------------------------------------------------


def scalar(value: Value) -> tuple[str, Any]:
    """(type, Python value) for ordering: N → Decimal, B → bytes, S → str (UTF-8 order)."""
    kind, inner = next(iter(value.items()))
    if kind == "N":
        return kind, Decimal(inner)
    if kind == "B":
        return kind, decode_binary(inner)
    if kind == "S":
        return kind, inner.encode()
    return kind, inner


def equal(a: Value, b: Value) -> bool:
    kind_a, kind_b = value_type(a), value_type(b)
    if kind_a != kind_b:
        return False
    if kind_a in ("N", "B", "S"):
        return scalar(a) == scalar(b)
    if kind_a in SET_TYPES:
        return set_members(a) == set_members(b)
    if kind_a == "L":
        return len(a["L"]) == len(b["L"]) and all(map(equal, a["L"], b["L"]))
    if kind_a == "M":
        return a["M"].keys() == b["M"].keys() and all(
            equal(v, b["M"][k]) for k, v in a["M"].items()
        )
    return bool(a[kind_a] == b[kind_b])


def set_members(value: Value) -> set[Any]:
    kind, members = next(iter(value.items()))
    if kind == "NS":
        return {Decimal(m) for m in members}
    if kind == "BS":
        return {decode_binary(m) for m in members}
    return set(members)


# -- key encoding -----------------------------------------------------------------------------


def encode_number(number: Decimal) -> bytes:
    """Bytes whose memcmp order is the numbers' order.

    0 → ``01``; positive → ``02`` + biased exponent (2 bytes) + digits; negative → ``00`` +
    complemented exponent + complemented digits + ``FF`` (so that a longer negative mantissa,
    a smaller number, sorts first).
    """
    if number.is_zero():
        return b"\x01"
    sign, digits, exponent = number.normalize(decimal.Context(prec=1000)).as_tuple()
    assert isinstance(exponent, int)
    magnitude = len(digits) + exponent + 0x8000  # value = 0.d1d2... x 10^(len+exp)
    text = bytes(0x30 + d for d in digits)
    if not sign:
        return b"\x02" + magnitude.to_bytes(2, "big") + text
    return (
        b"\x00" + (0xFFFF - magnitude).to_bytes(2, "big") + bytes(0xFF - c for c in text) + b"\xff"
    )


def encode_key(value: Value) -> bytes:
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return bytes(inner.encode())
    if kind == "B":
        return decode_binary(inner)
    return encode_number(Decimal(inner))

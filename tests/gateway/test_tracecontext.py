"""Trace context headers: W3C traceparent/tracestate, B3 single and multi, X-Ray."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from stackyard.gateway.tracecontext import (
    extract,
    format_b3,
    format_traceparent,
    format_xray,
    new_span_id,
    new_trace_id,
    parse_b3_single,
    parse_traceparent,
    parse_xray,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_traceparent_valid_and_flags():
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01".encode()) == (TRACE, SPAN, True)
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-00".encode()) == (TRACE, SPAN, False)
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-03".encode()) == (TRACE, SPAN, True)
    assert parse_traceparent(f" 00-{TRACE}-{SPAN}-01 ".encode()) == (TRACE, SPAN, True)


def test_traceparent_invalid():
    bad = [
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{SPAN}-01",  # forbidden version
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper case
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 must be exactly 55 characters
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"0-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-0x",
        f"zz-{TRACE}-{SPAN}-01",
        "",
        "garbage",
    ]
    for value in bad:
        assert parse_traceparent(value.encode()) is None, value


def test_traceparent_future_version():
    assert parse_traceparent(f"cc-{TRACE}-{SPAN}-01".encode()) == (TRACE, SPAN, True)
    assert parse_traceparent(f"cc-{TRACE}-{SPAN}-01-what-ever".encode()) == (TRACE, SPAN, True)
    assert parse_traceparent(f"cc-{TRACE}-{SPAN}-01what".encode()) is None


@given(st.binary(max_size=80))
def test_traceparent_never_raises(value: bytes) -> None:
    found = parse_traceparent(value)
    if found is not None:
        assert len(found[0]) == 32 and len(found[1]) == 16


@given(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.booleans())
def test_traceparent_round_trip(trace: int, span: int, sampled: bool) -> None:
    trace_id, span_id = f"{trace:032x}", f"{span:016x}"
    text = format_traceparent(trace_id, span_id, sampled)
    assert parse_traceparent(text.encode()) == (trace_id, span_id, sampled)


def test_b3_single_forms():
    found = parse_b3_single(f"{TRACE}-{SPAN}-1-{'a' * 16}".encode())
    assert found is not None and (found.trace_id, found.parent_id, found.sampled) == (
        TRACE,
        SPAN,
        True,
    )
    found = parse_b3_single(f"{TRACE[16:]}-{SPAN}".encode())  # 64-bit trace id, no decision
    assert found is not None
    assert found.trace_id == "0" * 16 + TRACE[16:] and found.sampled is None
    found = parse_b3_single(f"{TRACE}-{SPAN}-d".encode())
    assert found is not None and found.sampled is True
    deny = parse_b3_single(b"0")
    assert deny is not None and deny.trace_id is None and deny.sampled is False
    for bad in (b"", b"x", f"{TRACE}-{SPAN}-7".encode(), f"{TRACE}-zz".encode()):
        assert parse_b3_single(bad) is None


def test_extract_precedence_and_multi():
    headers = [
        (b"x-b3-traceid", TRACE.encode()),
        (b"x-b3-spanid", SPAN.encode()),
        (b"x-b3-sampled", b"0"),
    ]
    found = extract(headers)
    assert (found.trace_id, found.parent_id, found.sampled, found.b3) == (TRACE, SPAN, False, True)
    flags = extract([*headers[:2], (b"x-b3-flags", b"1")])
    assert flags.sampled is True
    other = "1" * 32
    both = extract(
        [(b"traceparent", f"00-{other}-{SPAN}-01".encode()), (b"tracestate", b"k=v"), *headers]
    )
    assert both.trace_id == other and both.b3 is False and both.tracestate == b"k=v"
    two = extract(
        [
            (b"traceparent", f"00-{other}-{SPAN}-01".encode()),
            (b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()),
        ]
    )
    assert two.trace_id is None  # two traceparent headers: invalid
    states = extract(
        [(b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()), (b"tracestate", b"a=1"),
         (b"tracestate", b"b=2")]
    )  # fmt: skip
    assert states.tracestate == b"a=1,b=2"
    nothing = extract([(b"tracestate", b"a=1")])
    assert nothing.trace_id is None and nothing.tracestate is None


def test_b3_format():
    assert format_b3(TRACE, SPAN, True, None) == f"{TRACE}-{SPAN}-1"
    assert format_b3(TRACE, SPAN, False, "a" * 16) == f"{TRACE}-{SPAN}-0-{'a' * 16}"


def test_xray_round_trip():
    header = format_xray(TRACE, SPAN, True)
    assert header == f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={SPAN};Sampled=1"
    assert parse_xray(header) == (TRACE, SPAN, True)
    assert parse_xray(f"Root=1-{TRACE[:8]}-{TRACE[8:]}") == (TRACE, None, None)
    assert parse_xray("Parent=abc") is None
    assert parse_xray("Root=2-abc-def") is None


def test_new_ids_are_valid_and_distinct():
    traces = {new_trace_id() for _ in range(1000)}
    spans = {new_span_id() for _ in range(1000)}
    assert len(traces) == 1000 and len(spans) == 1000
    assert all(len(t) == 32 and int(t, 16) for t in traces)
    assert all(len(s) == 16 and int(s, 16) for s in spans)


def test_new_trace_ids_are_xray_shaped():
    before = int(time.time())
    trace_id = new_trace_id()
    after = int(time.time())
    assert before <= int(trace_id[:8], 16) <= after  # X-Ray: the first 8 digits are the time
    root = format_xray(trace_id, SPAN, True).split(";")[0]
    assert root == f"Root=1-{trace_id[:8]}-{trace_id[8:]}"
    # the random part covers the lower 64 bits that sampling reads: about half below the middle
    low = [int(new_trace_id()[16:], 16) < 1 << 63 for _ in range(4000)]
    assert 1800 < sum(low) < 2200

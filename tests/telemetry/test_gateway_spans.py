"""The gateway's compact span records: the span writer's fast path stores exactly what its
general path stores for the same spans, and ``spans_of`` gives the same spans."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.telemetry import span_writer
from stackyard.telemetry.gateway_spans import (
    FUNCTION_CALL,
    HTTP_TRY,
    REQUEST,
    expand,
    rows_of,
    spans_of,
)

_hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
_hex16 = st.text("0123456789abcdef", min_size=16, max_size=16)
_status = st.sampled_from([0, 200, 404, 500, 502])
_error = st.none() | st.sampled_from(["CancelledError", "UpstreamTimeout", 'x"é\n'])


@st.composite
def records(draw: st.DrawFn) -> tuple[object, ...]:
    ids = draw(st.lists(_hex16, min_size=4, max_size=4, unique=True))  # random in the gateway
    clients = []
    for attempt in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, 2**62))
        if draw(st.booleans()):
            clients.append(
                (
                    HTTP_TRY,
                    ids[attempt + 1],
                    "GET " + draw(st.text(max_size=8)),
                    start,
                    draw(st.integers(0, 10**9)),
                    draw(st.sampled_from(["backend", "Svc", "gateway", ""])),
                    draw(st.sampled_from(["127.0.0.1", "::1", "fe80::1"])),
                    draw(st.integers(1, 65535)),
                    attempt + 1,
                    draw(st.none() | _status),
                    draw(_error),
                )
            )
        else:
            clients.append(
                (
                    FUNCTION_CALL,
                    ids[attempt + 1],
                    "invoke fn",
                    start,
                    draw(st.integers(0, 10**9)),
                    draw(st.sampled_from(["fn", "Gateway"])),
                    draw(_status),
                    draw(_error),
                )
            )
    routed = draw(st.booleans())
    return (
        REQUEST,
        draw(_hex32),
        ids[0],
        draw(st.none() | _hex16),
        draw(st.sampled_from(["gateway", "Edge"])),
        draw(st.integers(0, 2**62)),
        draw(st.integers(0, 10**9)),
        draw(st.sampled_from(["GET", "POST"])),
        draw(st.binary(min_size=1, max_size=12)),
        draw(st.binary(max_size=6)),
        draw(st.text(max_size=10)) if routed else None,
        draw(st.text(max_size=6)) if routed else None,
        draw(st.none() | st.text(max_size=4)) if routed else None,
        draw(_status),
        draw(_error),
        draw(st.text(max_size=12)),
        clients or None,
    )


def _db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(span_writer.SCHEMA)
    return conn


def _stored(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], ...]:
    return (
        conn.execute("SELECT * FROM spans ORDER BY rowid").fetchall(),
        conn.execute("SELECT * FROM calls ORDER BY trace_id, call_key").fetchall(),
        conn.execute("SELECT * FROM span_names ORDER BY 1, 2").fetchall(),
        conn.execute("SELECT * FROM remote_services ORDER BY 1, 2").fetchall(),
    )


@settings(max_examples=300, deadline=None)
@given(record=records())
def test_fast_path_stores_what_the_general_path_stores(record: tuple[object, ...]) -> None:
    fast, general = _db(), _db()
    span_writer.SpanWriter().write(fast, [record])  # alone in its trace: the fast path
    span_writer.SpanWriter().write(general, list(expand(record)))  # span tuples
    assert _stored(fast) == _stored(general)
    rows, _ = rows_of(record)
    assert len(rows) == len(_stored(fast)[0])


@st.composite
def calls_with_callee(draw: st.DrawFn) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """A gateway record with at least one CLIENT span, and the SERVER span of what one of
    them called (a function's invocation), as the node ships them."""
    record = draw(records().filter(lambda r: bool(r[16])))
    clients: list[tuple[object, ...]] = record[16]  # type: ignore[assignment]
    parent = draw(st.sampled_from(clients))
    taken = {record[2], record[3], *(client[1] for client in clients)}
    span_id = draw(_hex16.filter(lambda value: value not in taken))
    tags = {"faas.invocation_id": draw(st.text(max_size=8)), "faas.name": "fn"}
    if draw(st.booleans()):
        tags["error"] = draw(st.sampled_from(["Unhandled", "Handled"]))
    service = draw(st.sampled_from(["fn", "Fn", "other"]))
    span = (
        record[1],
        span_id,
        draw(st.sampled_from(["fn", "Fn"])),
        parent[1],
        "SERVER",
        draw(st.none() | st.integers(0, 2**62)),
        draw(st.integers(1, 10**9)),
        (service, None, None, None),
        None,
        tags,
        [],
        False,
        False,
    )
    return record, span


@settings(max_examples=300, deadline=None)
@given(pair=calls_with_callee(), callee_first=st.booleans())
def test_a_request_and_its_callee_store_what_the_general_path_stores(
    pair: tuple[tuple[object, ...], tuple[object, ...]], callee_first: bool
) -> None:
    record, span = pair
    fast, general = _db(), _db()
    span_writer.SpanWriter().write(fast, [span, record] if callee_first else [record, span])
    span_writer.SpanWriter().write(general, [*expand(record), span])
    if span[5] is None:  # a span without a time is stored at the writer's "now": align them
        for conn in (fast, general):
            conn.execute("UPDATE spans SET ts = 0 WHERE span_id = ?", (span[1],))
            conn.execute("UPDATE calls SET ts = 0 WHERE call_key LIKE ?", (f"e:{span[1]}:%",))
    assert _stored(fast) == _stored(general)
    if span[5] is not None:
        minutes = "SELECT * FROM call_minutes ORDER BY 1, 2, 3"
        assert fast.execute(minutes).fetchall() == general.execute(minutes).fetchall()
    edges = [row for row in _stored(fast)[1] if row[1].startswith("e:")]
    same_service = span[7][0].lower() == str(record[4]).lower()  # type: ignore[index]
    assert len(edges) == (0 if same_service else 1)


@settings(max_examples=100, deadline=None)
@given(record=records())
def test_spans_of_matches_the_stored_json(record: tuple[object, ...]) -> None:
    conn = _db()
    span_writer.SpanWriter().write(conn, [record])
    bodies = [r[0] for r in conn.execute("SELECT body FROM spans ORDER BY rowid")]
    assert bodies == [span.to_json() for span in spans_of(record)]


def test_a_request_whose_trace_has_other_spans_takes_the_general_path() -> None:
    trace = "a" * 32
    first = (REQUEST, trace, "1" * 16, None, "gateway", 10**15, 5000, "GET", b"/a", b"")
    first += ("/a", "svc", None, 200, None, "c1", None)
    resent = (*first[:13], 503, *first[14:])
    conn = _db()
    writer = span_writer.SpanWriter()
    writer.write(conn, [first])
    writer.write(conn, [resent])  # the same span again: it replaces the first
    rows = conn.execute("SELECT error, body FROM spans").fetchall()
    assert len(rows) == 1 and rows[0][0] == 1 and '"http.status_code":"503"' in rows[0][1]

"""The shared record of a request's answer (``gateway.answer``)."""

from __future__ import annotations

from typing import Any

from stackyard.gateway.answer import Answer, observe


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_the_outermost_observer_wraps_send_once_and_inner_ones_share_it() -> None:
    sent: list[dict[str, Any]] = []

    async def server_send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "headers": []}
    outer, outer_send = observe(scope, server_send)
    outer.headers = ((b"x-one", b"1"),)
    inner, inner_send = observe(scope, outer_send)
    assert inner is outer and inner_send is outer_send and outer_send is not server_send
    assert scope["state"]["answer"] is outer
    inner.headers = (*inner.headers, (b"x-two", b"2"))
    start = {"type": "http.response.start", "status": 201, "headers": ((b"a", b"b"),)}
    await inner_send(start)
    await inner_send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await inner_send({"type": "http.response.body", "body": b"de"})
    assert (outer.status, outer.size) == (201, 5)
    assert sent[0]["headers"] == [(b"a", b"b"), (b"x-one", b"1"), (b"x-two", b"2")]
    assert [m.get("body") for m in sent[1:]] == [b"abc", b"de"]


def test_nothing_answered_is_status_zero() -> None:
    answer = Answer()
    assert (answer.status, answer.size, answer.headers) == (0, 0, ())

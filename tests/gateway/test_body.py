"""Answers held back whole up to a limit (:class:`~stackyard.gateway.body.HeldAnswer`)."""

from __future__ import annotations

from stackyard.asgi import Message
from stackyard.gateway.body import HeldAnswer

START: Message = {"type": "http.response.start", "status": 200, "headers": []}


def body(chunk: bytes, more: bool) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def test_an_answer_within_the_limit_comes_back_whole() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    answer = HeldAnswer(send, limit=10)
    answer.hold(START)
    assert answer.held
    assert await answer.add(body(b"12345", True)) is None
    assert await answer.add(body(b"67890", False)) == (START, b"1234567890")
    assert not answer.held
    assert sent == []  # the step sends it


async def test_an_answer_over_the_limit_is_sent_on_unchanged() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    answer = HeldAnswer(send, limit=8)
    answer.hold(START)
    assert await answer.add(body(b"12345", True)) is None
    assert await answer.add(body(b"67890", True)) is None
    assert not answer.held  # the rest passes straight on
    assert sent == [START, body(b"1234567890", True)]

    answer.hold(START)
    sent.clear()
    assert await answer.add(body(b"123456789", False)) is None
    assert sent == [START, body(b"123456789", False)]

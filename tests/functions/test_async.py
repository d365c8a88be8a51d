"""Asynchronous invocations: 202 then delivery, retries, dead letters, redrive, restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from stackyard.functions.errors import UnknownFunction

from .conftest import Factory, fn


async def wait_for(predicate, limit: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


def records(path: Path) -> list[object]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def recorder(tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    env = {"RECORD_FILE": str(tmp_path / "records"), "FAIL_FILE": str(tmp_path / "fail")}
    return fn("handlers.record", env=env, **kwargs)


async def test_async_invoke_is_delivered(serve: Factory, tmp_path: Path) -> None:
    served = await serve({"rec": recorder(tmp_path)})
    result = await served.call(
        "invoke", FunctionName="rec", InvocationType="Event", Payload=b'{"n": 1}'
    )
    assert result["StatusCode"] == 202
    assert result["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert await wait_for(lambda: records(tmp_path / "records")) == [{"n": 1}]
    await wait_for(lambda: served.runtime.dispatcher.pending == 0)


async def test_retries_then_dead_letter_then_redrive(serve: Factory, tmp_path: Path) -> None:
    (tmp_path / "fail").touch()
    served = await serve({"rec": recorder(tmp_path)}, retry_delays=(0.1, 0.2))
    await served.call("invoke", FunctionName="rec", InvocationType="Event", Payload=b'{"n": 2}')
    await wait_for(lambda: len(records(tmp_path / "records")) == 3)
    async with aiohttp.ClientSession(served.url) as http:

        async def letters() -> list[dict[str, object]]:
            async with http.get("/_stackyard/functions/dead-letters") as response:
                return (await response.json())["dead_letters"]  # type: ignore[no-any-return]

        for _ in range(100):
            dead = await letters()
            if dead:
                break
            await asyncio.sleep(0.05)
        assert len(dead) == 1
        assert dead[0]["function"] == "rec" and dead[0]["attempts"] == 3
        assert json.loads(str(dead[0]["payload"])) == {"n": 2}
        assert "failing on purpose" in str(dead[0]["error"])
        await asyncio.sleep(0.3)
        assert len(records(tmp_path / "records")) == 3  # no more attempts
        async with http.get("/_stackyard/functions") as response:
            status = (await response.json())["functions"][0]
        assert status["dead_letters"] == 1 and status["pending_events"] == 0

        (tmp_path / "fail").unlink()
        async with http.post(
            f"/_stackyard/functions/dead-letters/{dead[0]['id']}/redrive"
        ) as response:
            assert response.status == 200
        await wait_for(lambda: len(records(tmp_path / "records")) == 4)
        await wait_for(lambda: served.runtime.dispatcher.pending == 0)
        assert await letters() == []
        async with http.post("/_stackyard/functions/dead-letters/nope/redrive") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "UnknownDeadLetter"


async def test_pending_event_survives_a_restart(serve: Factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = await serve({"rec": recorder(tmp_path)}, data_dir=data)
    await served.call("invoke", FunctionName="rec", InvocationType="Event", Payload=b'{"delay": 1}')
    await asyncio.sleep(0.3)  # being delivered, not finished
    await served.runtime.stop()
    assert records(tmp_path / "records") == []
    again = await serve({"rec": recorder(tmp_path)}, data_dir=data)
    assert await wait_for(lambda: records(tmp_path / "records")) == [{"delay": 1}]
    await wait_for(lambda: again.runtime.dispatcher.pending == 0)


async def test_events_older_than_the_maximum_age_are_not_delivered(
    serve: Factory, tmp_path: Path
) -> None:
    """An event accepted 7 hours ago (a node that was down) goes to the dead letters unrun;
    redriving it makes it a new event, which is delivered."""
    import time
    import uuid

    from stackyard.functions.events_store import StoredEvent

    served = await serve({"rec": recorder(tmp_path)})
    runtime = served.runtime
    now = time.time()
    old = StoredEvent(str(uuid.uuid4()), "rec", b'{"n": "old"}', 0, now, now - 7 * 3600)
    await runtime.store.put(old)
    runtime.dispatcher.requeue(old)
    letters = (
        await wait_for(lambda: runtime.dispatcher.pending == 0) and await runtime.dead_letters()
    )
    assert [(d.id, d.function) for d in letters] == [(old.id, "rec")]
    assert letters[0].error.startswith("EventAgeExceeded: 252")
    assert letters[0].error.endswith("s old, the maximum is 21600 s")
    assert records(tmp_path / "records") == []

    await runtime.redrive(old.id)
    assert await wait_for(lambda: records(tmp_path / "records")) == [{"n": "old"}]
    assert await runtime.dead_letters() == []


async def test_several_events_accepted_at_once_are_all_delivered(
    serve: Factory, tmp_path: Path
) -> None:
    served = await serve({"rec": recorder(tmp_path)})
    items = [("rec", json.dumps({"n": n}).encode(), None) for n in range(5)]
    ids = await served.runtime.invoke_async_many(items)
    assert len(set(ids)) == 5
    found = await wait_for(lambda: len(r := records(tmp_path / "records")) == 5 and r)
    assert sorted(record["n"] for record in found) == [0, 1, 2, 3, 4]  # type: ignore[index]


async def test_a_batch_naming_an_unknown_function_keeps_none_of_it(
    serve: Factory, tmp_path: Path
) -> None:
    served = await serve({"rec": recorder(tmp_path)})
    items = [("rec", b'{"n": 1}', None), ("nowhere", b"{}", None)]
    with pytest.raises(UnknownFunction, match="nowhere"):
        await served.runtime.invoke_async_many(items)
    assert served.runtime.dispatcher.pending == 0
    await asyncio.sleep(0.3)
    assert records(tmp_path / "records") == []

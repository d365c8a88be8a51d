"""Clients racing on one DynamoDB item: the optimistic-locking counter of the storage tests."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError


def race_increments(
    clients: list[Any], table: str, key: dict[str, Any], each: int, timeout: float
) -> list[int]:
    """Each client, on a thread of its own, adds 1 to the item's ``n`` ``each`` times, as fast
    as it can, with a version check (``n = :old``); a lost race is read and tried again.
    Returns the increments each client got acknowledged; raises what a client failed with."""
    done = [0] * len(clients)
    errors: list[BaseException] = []

    def increment(index: int) -> None:
        client = clients[index]
        try:
            while done[index] < each:
                n = int(client.get_item(TableName=table, Key=key)["Item"]["n"]["N"])
                try:
                    client.update_item(
                        TableName=table,
                        Key=key,
                        UpdateExpression="SET n = :new",
                        ConditionExpression="n = :old",
                        ExpressionAttributeValues={
                            ":new": {"N": str(n + 1)},
                            ":old": {"N": str(n)},
                        },
                    )
                except ClientError as exc:  # lost the race: nothing written
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
                    continue
                done[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=increment, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors, errors
    return done

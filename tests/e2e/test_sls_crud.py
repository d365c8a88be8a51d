"""A Serverless Framework CRUD API over a DynamoDB table declared in ``resources``, run
unchanged through the gateway: the handlers use boto3 against the node's DynamoDB API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackyard.testing import NodeProcess

APP = Path(__file__).parent / "apps" / "sls_crud"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("sls-crud") / "data"
    with NodeProcess(APP, data_dir=data_dir, env={"PYTHON": sys.executable}) as running:
        running.wait_ready(60)
        yield running


def test_crud_through_the_gateway(node: NodeProcess) -> None:
    api = f"{node.gateway_url}/dev/todos"
    with httpx.Client(timeout=30) as client:
        created = client.post(api, json={"text": "buy milk"})
        assert created.status_code == 201, created.text
        todo = created.json()
        assert todo["text"] == "buy milk" and todo["checked"] is False and todo["revision"] == 1

        assert client.post(api, json={}).status_code == 400
        listed = client.get(api)
        assert listed.status_code == 200 and [t["id"] for t in listed.json()] == [todo["id"]]

        got = client.get(f"{api}/{todo['id']}")
        assert got.status_code == 200 and got.json() == todo

        updated = client.put(f"{api}/{todo['id']}", json={"text": "buy oat milk", "checked": True})
        assert updated.status_code == 200, updated.text
        new = updated.json()  # ReturnValues=ALL_NEW, ExpressionAttributeNames for "text"
        assert (new["text"], new["checked"], new["revision"]) == ("buy oat milk", True, 2)
        assert new["createdAt"] == todo["createdAt"] and new["updatedAt"] >= todo["updatedAt"]

        # the condition keeps an update from creating an item: the function fails (502)
        assert client.put(f"{api}/nope", json={"text": "x", "checked": False}).status_code == 502

        assert client.delete(f"{api}/{todo['id']}").status_code == 204
        assert client.get(f"{api}/{todo['id']}").status_code == 404
        assert client.get(api).json() == []

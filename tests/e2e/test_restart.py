"""An async invocation accepted (202) but not yet delivered survives a restart of the node."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import boto3

from stackyard.testing import NodeProcess, wait_until

APP = Path(__file__).resolve().parent / "apps" / "restart"


def lambda_client(node: NodeProcess):  # type: ignore[no-untyped-def]
    return boto3.client(
        "lambda", endpoint_url=node.control_url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip


def test_pending_async_invocation_is_delivered_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = tmp_path / "done"
    first = NodeProcess(APP, data_dir=data_dir).start()
    try:
        first.wait_ready(60)
        client = lambda_client(first)
        # occupy the function's only worker, so the async event has to wait
        busy = threading.Thread(
            target=lambda: _quietly(client.invoke, FunctionName="sleeper",
                                    Payload=b'{"sleep": 20}'),
            daemon=True,
        )  # fmt: skip
        busy.start()
        wait_until(
            lambda: (
                first.get_json(f"{first.control_url}/_stackyard/functions")[1]["functions"][0][
                    "busy"
                ]
                == 1
            ),
            10,
            what="the worker to be busy",
        )
        result = client.invoke(
            FunctionName="sleeper",
            InvocationType="Event",
            Payload=json.dumps({"done_file": str(done)}).encode(),
        )
        assert result["StatusCode"] == 202
    finally:
        assert first.stop() == 0, first.output()
    assert not done.exists()

    with NodeProcess(APP, data_dir=data_dir) as second:
        second.wait_ready(60)
        wait_until(done.exists, 20, what="the stored event to be delivered after the restart")


def _quietly(call, **kwargs):  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):  # the node stops under it: the answer does not matter
        call(**kwargs)

"""DynamoDB Streams on the PostgreSQL backend through real nodes: two nodes on one database and
schema, the same function subscribed on both, boto3 writing through both at once.

Each record reaches the function exactly once (by one node), in write order; what one node
wrote is read with the DynamoDB Streams API on the other; when the delivering node stops, the
other goes on from the stored position; when PostgreSQL ends the delivering connection, the
lease is taken again and delivery goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stackyard.testing import NodeProcess, wait_until

from ..postgres import fresh_schema
from ..tables.conftest import make_client
from .leases import end_lease_sessions

STACK = """\
name: pg-streams
storage:
  tables: {{backend: postgres, url: "{url}", schema_name: {schema}}}
tables:
  events: {{hash_key: id, range_key: n, attributes: {{n: N}}, stream: new_image}}
functions:
  count:
    handler: handler.count
    env: {{OUT: "{out}", NODE: {node}}}
    events:
      - stream: {{table: events, batch_size: 7, starting_position: TRIM_HORIZON}}
"""

HANDLER = """\
import os

def count(event, context):
    lines = [
        " ".join((r["dynamodb"]["SequenceNumber"], r["dynamodb"]["Keys"]["id"]["S"],
                  r["dynamodb"]["Keys"]["n"]["N"], os.environ["NODE"]))
        for r in event["Records"]
    ]
    with open(os.environ["OUT"], "a") as out:  # one write per batch: appends do not interleave
        out.write("".join(line + "\\n" for line in lines))
"""


def delivered(out: Path) -> list[tuple[int, str, int, str]]:
    if not out.exists():
        return []
    rows = [line.split() for line in out.read_text().splitlines() if line.strip()]
    return [(int(seq), id_, int(n), node) for seq, id_, n, node in rows]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess, Path, str, str]]:
    out = tmp_path / "delivered.txt"
    with fresh_schema() as (url, schema):
        started: list[NodeProcess] = []
        try:
            for name in ("a", "b"):
                root = tmp_path / f"app-{name}"
                root.mkdir()
                (root / "stackyard.yml").write_text(
                    STACK.format(url=url, schema=schema, out=out, node=name)
                )
                (root / "handler.py").write_text(HANDLER)
                node = NodeProcess(root, data_dir=tmp_path / f"data-{name}").start()
                started.append(node)
                node.wait_ready()
            yield started[0], started[1], out, url, schema
        finally:
            for node in started:
                node.stop()


def stored_position(url: str, schema: str) -> int:
    """The subscription's position stored in the schema (0: none yet)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT seq FROM {schema}.stream_positions WHERE mapping = %s", ("count|events",)
        ).fetchone()
    return int(row[0]) if row else 0


def settled(url: str, schema: str, last_seq: int) -> None:
    """Wait until the delivering node has stored the position of the last delivered record:
    only then is stopping it (or ending its session) free of a legitimate redelivery (a batch
    whose position was not stored yet is delivered again: at least once)."""
    wait_until(lambda: stored_position(url, schema) >= last_seq, 30, what="the stored position")


def streams_client(node: NodeProcess) -> Any:
    return node.aws_client("dynamodbstreams")


def read_stream(node: NodeProcess, table: str) -> list[Any]:
    ddb, streams = make_client(node.control_url), streams_client(node)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    it = it["ShardIterator"]
    records: list[Any] = []
    while page := streams.get_records(ShardIterator=it):
        if not page["Records"]:
            return records
        records += page["Records"]
        it = page["NextShardIterator"]
    return records


def test_two_nodes_deliver_each_record_once_in_order(
    nodes: tuple[NodeProcess, NodeProcess, Path, str, str],
) -> None:
    a, b, out, url, schema = nodes
    clients = [make_client(a.control_url), make_client(b.control_url)]
    writers, per_writer = 6, 15
    errors: list[BaseException] = []

    def write(index: int) -> None:
        ddb = clients[index % 2]  # writers on both nodes at once, each its own key
        try:
            for n in range(per_writer):
                ddb.put_item(
                    TableName="events", Item={"id": {"S": f"w{index}"}, "n": {"N": str(n)}}
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    total = writers * per_writer
    got = wait_until(
        lambda: (rows := delivered(out)) and len(rows) >= total and rows, 60, what="deliveries"
    )
    assert len(got) == total  # none twice
    seqs = [row[0] for row in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == total  # in sequence order
    for index in range(writers):  # each key's writes in write order
        assert [n for _, id_, n, _ in got if id_ == f"w{index}"] == list(range(per_writer))

    # the Streams API of either node reads the same records, none missing
    for node in (a, b):
        records = read_stream(node, "events")
        assert [int(r["dynamodb"]["SequenceNumber"]) for r in records] == seqs

    # the delivering node stops: the other goes on from the stored position
    settled(url, schema, seqs[-1])
    deliverer = got[-1][3]
    stopping, staying = (a, b) if deliverer == "a" else (b, a)
    stopping.stop()
    ddb = make_client(staying.control_url)
    for n in range(5):
        ddb.put_item(TableName="events", Item={"id": {"S": "after"}, "n": {"N": str(n)}})
    more = wait_until(
        lambda: (rows := delivered(out)) and len(rows) >= total + 5 and rows, 60, what="takeover"
    )
    assert len(more) == total + 5
    assert [n for _, id_, n, _ in more[total:] if id_ == "after"] == list(range(5))
    assert {node for *_, node in more[total:]} == {"b" if deliverer == "a" else "a"}

    # PostgreSQL ends the connection holding the lease: it is taken again, nothing is lost
    settled(url, schema, more[-1][0])
    ended = end_lease_sessions(url, schema, "count|events")
    assert ended == [(True,)]
    for n in range(5, 8):
        ddb.put_item(TableName="events", Item={"id": {"S": "after"}, "n": {"N": str(n)}})
    last = wait_until(
        lambda: (rows := delivered(out)) and len(rows) >= total + 8 and rows, 60, what="relock"
    )
    assert len(last) == total + 8
    assert [n for _, id_, n, _ in last[total:]] == list(range(8))

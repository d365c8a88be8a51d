import json
import os
import time
import uuid
from decimal import Decimal

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TODOS_TABLE"])


def _answer(status, body=None):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, default=lambda d: int(d) if d == int(d) else float(d)),
    }


def create(event, context):
    data = json.loads(event["body"])
    if "text" not in data:
        return _answer(400, {"error": "text is required"})
    now = Decimal(int(time.time() * 1000))
    item = {
        "id": str(uuid.uuid1()),
        "text": data["text"],
        "checked": False,
        "createdAt": now,
        "updatedAt": now,
        "revision": 1,
    }
    table.put_item(Item=item)
    return _answer(201, item)


def list_todos(event, context):
    return _answer(200, table.scan()["Items"])


def get(event, context):
    found = table.get_item(Key={"id": event["pathParameters"]["id"]})
    if "Item" not in found:
        return _answer(404, {"error": "no such todo"})
    return _answer(200, found["Item"])


def update(event, context):
    data = json.loads(event["body"])
    result = table.update_item(
        Key={"id": event["pathParameters"]["id"]},
        ExpressionAttributeNames={"#todo_text": "text"},
        ExpressionAttributeValues={
            ":text": data["text"],
            ":checked": data["checked"],
            ":updatedAt": Decimal(int(time.time() * 1000)),
            ":one": 1,
        },
        UpdateExpression="SET #todo_text = :text, checked = :checked, "
        "updatedAt = :updatedAt, revision = revision + :one",
        ConditionExpression="attribute_exists(id)",
        ReturnValues="ALL_NEW",
    )
    return _answer(200, result["Attributes"])


def delete(event, context):
    table.delete_item(Key={"id": event["pathParameters"]["id"]})
    return _answer(204)

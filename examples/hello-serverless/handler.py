"""Handlers of the hello-serverless example (AWS Lambda signature)."""

import json
import os

GREETING = os.environ.get("GREETING", "Hello")


def hello(event, context):
    name = (event.get("pathParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"{GREETING}, {name}!", "request_id": context.aws_request_id}),
    }


def echo(event, context):
    # HTTP API payload 2.0: returning a dict without statusCode answers 200 with its JSON
    return {"received": event.get("body"), "base64": event.get("isBase64Encoded", False)}


def tick(event, context):
    print(json.dumps({"tick": event.get("time"), "source": event.get("source")}))

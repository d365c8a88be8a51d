"""The bench's hello-world Lambda handler: a small JSON answer, nothing else."""

import json

BODY = json.dumps({"message": "hello, world"})
HEADERS = {"content-type": "application/json"}


def hello(event, context):
    return {"statusCode": 200, "headers": HEADERS, "body": BODY}

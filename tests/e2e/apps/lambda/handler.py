import base64
import json
import os


def echo(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-stage-seen": os.environ["STAGE_SEEN"]},
        "body": json.dumps({"event": event, "function": context.function_name}),
    }


def infer(event, context):
    return {"inferred": True, "query": event.get("queryStringParameters")}


def cookies(event, context):
    return {
        "statusCode": 201,
        "cookies": ["a=1; Path=/", "b=2"],
        "headers": {"x-got-cookies": ",".join(event.get("cookies") or [])},
        "body": "ok",
    }


def binary(event, context):
    data = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(data[::-1]).decode(),
        "isBase64Encoded": True,
    }


class BoomError(Exception):
    pass


def boom(event, context):
    raise BoomError("it went boom")


def malformed(event, context):
    return {"statusCode": "not a number", "body": 12}


def flaky(event, context):
    """Fails unless the event says otherwise (async retries, dead letters, redrive)."""
    if not os.path.exists(event["ok_file"]):
        raise RuntimeError("not yet")
    with open(event["done_file"], "w") as out:
        out.write(context.aws_request_id)
    return "done"

import json


def identity(event, context):
    return {"statusCode": 200, "body": json.dumps(event["requestContext"]["identity"])}

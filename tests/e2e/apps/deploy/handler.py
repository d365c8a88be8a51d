import os


def hello(event, context):
    return {"statusCode": 200, "body": os.environ.get("GREETING", "")}

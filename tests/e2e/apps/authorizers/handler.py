"""Functions of the authorizers e2e stack: a simple-response authorizer and an echo."""

import json


def authorize(event, context):
    token = event["identitySource"][0]
    return {"isAuthorized": token == "open-sesame", "context": {"caller": "ali-baba"}}


def echo(event, context):
    return {"statusCode": 200, "body": json.dumps(event["requestContext"].get("authorizer"))}

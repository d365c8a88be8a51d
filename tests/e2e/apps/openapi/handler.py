import json


def hello(event, context):
    """Says which route and payload version called it."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "function": context.function_name,
                "version": event.get("version"),
                "path": event.get("rawPath") or event.get("path"),
                "authorizer": (event.get("requestContext") or {}).get("authorizer"),
            }
        ),
    }


def authorize(event, context):
    """A simple-response REQUEST authorizer: the x-token header must be 'letmein'."""
    token = (event.get("headers") or {}).get("x-token")
    return {"isAuthorized": token == "letmein", "context": {"user": "tester"}}

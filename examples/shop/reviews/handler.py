"""Reviews of catalog items: a function behind the gateway that keeps them in a table.

GET /reviews?item_id=1 lists an item's reviews, newest first; POST /reviews with
{"item_id": "1", "stars": 5, "text": "..."} adds one. boto3 finds the node's DynamoDB API
through AWS_ENDPOINT_URL, which the node sets for every function.
"""

import json
import logging
import os
import time
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key

logger = logging.getLogger()
logger.setLevel(logging.INFO)
table = boto3.resource("dynamodb").Table(os.environ["REVIEWS_TABLE"])


def main(event, context):
    if event["requestContext"]["http"]["method"] == "POST":
        return add(json.loads(event.get("body") or "{}"))
    item_id = (event.get("queryStringParameters") or {}).get("item_id")
    if not item_id:
        return answer(400, {"error": "item_id is needed"})
    found = table.query(KeyConditionExpression=Key("item_id").eq(item_id), ScanIndexForward=False)
    return answer(200, {"reviews": found["Items"]})


def add(review):
    if not isinstance(review.get("item_id"), str) or review.get("stars") not in range(1, 6):
        return answer(400, {"error": "item_id (a string) and stars (1 to 5) are needed"})
    item = {
        "item_id": review["item_id"],
        "created": int(time.time() * 1000),
        "stars": review["stars"],
        "text": str(review.get("text", ""))[:2000],
    }
    table.put_item(Item=item)
    logger.info("review added for item %s (%d stars)", item["item_id"], item["stars"])
    return answer(201, item)


def answer(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, default=lambda v: int(v) if isinstance(v, Decimal) else str(v)),
    }

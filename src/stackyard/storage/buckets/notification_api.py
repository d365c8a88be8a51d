"""PutBucketNotificationConfiguration and GetBucketNotificationConfiguration (``?notification``).

A configuration holds ``CloudFunctionConfiguration`` elements (boto3's
``LambdaFunctionConfigurations``): an optional ``Id`` (one is made up when missing), the
function's ARN (``arn:aws:lambda:<region>:<account>:function:<name>``, naming a function of the
stack), one or more ``Event`` types and an optional ``Filter`` with at most one ``prefix`` and one
``suffix`` rule. Two configurations whose event types, prefixes and suffixes overlap are refused,
as S3 refuses them. Topic, queue and EventBridge destinations are not implemented (501). An
empty configuration removes the bucket's notifications. Only what was set through the API is
answered by GET; the stack's ``s3`` events apply beside it and are not shown.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...config.s3_events import S3_EVENTS
from .body import read_small
from .errors import InvalidArgument, MalformedXML, NotImplementedError_
from .notifications import NotificationRule
from .xml import child_text, children, document, local, parse

if TYPE_CHECKING:
    from .http import S3Request
    from .service import Buckets

_FUNCTION_ARN = re.compile(
    r"^arn:aws:lambda:[a-z0-9-]*:\d{12}:function:([A-Za-z0-9_-]{1,64})(:.+)?$"
)
_OTHER_DESTINATIONS = ("TopicConfiguration", "QueueConfiguration", "EventBridgeConfiguration")
MAX_ID = 255


async def get_notification(service: Buckets, request: S3Request) -> None:
    await service.store.bucket(request.bucket or "")
    rules = service.notifications.configuration(request.bucket or "")
    await request.xml(document("NotificationConfiguration", [_node(rule) for rule in rules]))


async def put_notification(service: Buckets, request: S3Request) -> None:
    bucket = request.bucket or ""
    await service.store.bucket(bucket)
    body = await read_small(request.receive, 1024 * 1024)
    names = service.notifications.functions.names() if service.notifications.functions else []
    rules = parse_configuration(parse(body), set(names)) if body.strip() else []
    await service.notifications.configure(bucket, rules)
    await request.respond(200)


def parse_configuration(root: ET.Element, functions: set[str]) -> list[NotificationRule]:
    """The rules of a ``NotificationConfiguration`` document; S3's errors for what S3 refuses,
    NotImplemented for destinations other than functions."""
    if local(root.tag) != "NotificationConfiguration":
        raise MalformedXML()
    for child in root:
        if local(child.tag) in _OTHER_DESTINATIONS:
            raise NotImplementedError_(
                f"Stackyard delivers bucket notifications to functions only "
                f"(CloudFunctionConfiguration); {local(child.tag)} is not implemented"
            )
    rules = [_rule(element, functions) for element in children(root, "CloudFunctionConfiguration")]
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise InvalidArgument(
            "Configuration is ambiguously defined: two configurations have the same Id",
            ArgumentName="Id",
        )
    check_overlaps(rules)
    return rules


def _rule(element: ET.Element, functions: set[str]) -> NotificationRule:
    arn = (child_text(element, "CloudFunction") or "").strip()
    events = tuple((e.text or "").strip() for e in children(element, "Event"))
    if not arn or not events:
        raise MalformedXML()
    rule_id = (child_text(element, "Id") or "").strip() or _new_id()
    if len(rule_id) > MAX_ID:
        raise InvalidArgument("The Id is longer than 255 characters", ArgumentName="Id")
    for event in events:
        if event not in S3_EVENTS:
            raise InvalidArgument(
                f"The event is not supported for notifications: {event} "
                f"(Stackyard supports {', '.join(S3_EVENTS)})",
                ArgumentName="Event",
                ArgumentValue=event,
            )
    match = _FUNCTION_ARN.match(arn)
    if match is None or match.group(1) not in functions:
        reason = (
            "not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
            if match is None
            else f"no function named {match.group(1)!r} in this stack"
            f" (functions: {', '.join(sorted(functions)) or 'none'})"
        )
        raise InvalidArgument(
            f"Unable to validate the following destination configurations: {arn}: {reason}",
            ArgumentName1=arn,
            ArgumentValue1=reason,
        )
    prefix, suffix = _filter(element)
    return NotificationRule(rule_id, match.group(1), events, prefix, suffix, arn)


def _filter(element: ET.Element) -> tuple[str, str]:
    found: dict[str, str] = {}
    for filter_element in children(element, "Filter"):
        for key in children(filter_element, "S3Key"):
            for rule in children(key, "FilterRule"):
                name = (child_text(rule, "Name") or "").strip().lower()
                if name not in ("prefix", "suffix"):
                    raise InvalidArgument(
                        "filter rule name must be either prefix or suffix",
                        ArgumentName="FilterRule.Name",
                        ArgumentValue=name,
                    )
                if name in found:
                    raise InvalidArgument(
                        f"Cannot specify more than one {name} rule in a filter.",
                        ArgumentName="FilterRule.Name",
                        ArgumentValue=name,
                    )
                found[name] = child_text(rule, "Value") or ""
    return found.get("prefix", ""), found.get("suffix", "")


def _new_id() -> str:
    return uuid.uuid4().hex


def _events_overlap(a: Sequence[str], b: Sequence[str]) -> bool:
    def covers(x: str, y: str) -> bool:
        return x == y or (x.endswith(":*") and y.startswith(x[:-1]))

    return any(covers(x, y) or covers(y, x) for x in a for y in b)


def check_overlaps(rules: Sequence[NotificationRule]) -> None:
    """S3 refuses two configurations an event could match both of (same event type,
    overlapping prefixes and overlapping suffixes)."""
    for index, first in enumerate(rules):
        for second in rules[index + 1 :]:
            prefixes = first.prefix.startswith(second.prefix) or second.prefix.startswith(
                first.prefix
            )
            suffixes = first.suffix.endswith(second.suffix) or second.suffix.endswith(first.suffix)
            if prefixes and suffixes and _events_overlap(first.events, second.events):
                raise InvalidArgument(
                    "Configuration is ambiguously defined. Cannot have overlapping suffixes in "
                    "two rules if the prefixes are overlapping for the same event type.",
                    ArgumentName="Event",
                    ArgumentValue=f"{first.id}, {second.id}",
                )


def _node(rule: NotificationRule) -> tuple[str, Any]:
    nodes: list[tuple[str, Any]] = [("Id", rule.id), ("CloudFunction", rule.arn)]
    nodes.extend(("Event", event) for event in rule.events)
    filters = [("Prefix", rule.prefix), ("Suffix", rule.suffix)]
    wanted = [("FilterRule", [("Name", n), ("Value", v)]) for n, v in filters if v]
    if wanted:
        nodes.append(("Filter", [("S3Key", wanted)]))
    return ("CloudFunctionConfiguration", nodes)

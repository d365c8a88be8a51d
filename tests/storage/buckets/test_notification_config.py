"""s3 events in stackyard.yml and serverless.yml, the rules they make, and the notification
configuration documents the S3 API takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import ConfigError, parse_stack
from stackyard.config.serverless import parse_serverless
from stackyard.functions.s3_events import encoded_key
from stackyard.storage.buckets.errors import BucketError
from stackyard.storage.buckets.notification_api import parse_configuration
from stackyard.storage.buckets.notifications import NotificationRule, stack_buckets, stack_rules
from stackyard.storage.buckets.xml import parse

SERVERLESS = """\
service: pics
provider: {name: aws, runtime: python3.11}
functions:
  thumbnail:
    handler: h.f
    events:
      - s3: photos
      - s3:
          bucket: photos
          event: s3:ObjectRemoved:*
          rules:
            - prefix: uploads/
            - suffix: .jpg
      - s3: {bucket: legacy, event: "s3:ObjectCreated:Put", existing: true, forceDeploy: true}
resources:
  Resources:
    Archive:
      Type: AWS::S3::Bucket
      Properties: {BucketName: archive}
"""


def test_serverless_s3_events() -> None:
    config, warnings = parse_serverless(SERVERLESS, Path("serverless.yml"), {}, {})
    events = [event.s3 for event in config.functions["thumbnail"].events]
    assert [(e.bucket, e.event, e.prefix, e.suffix, e.existing) for e in events if e] == [
        ("photos", "s3:ObjectCreated:*", "", "", False),
        ("photos", "s3:ObjectRemoved:*", "uploads/", ".jpg", False),
        ("legacy", "s3:ObjectCreated:Put", "", "", True),
    ]
    assert warnings == [
        "functions.thumbnail.events.s3.forceDeploy: nothing to deploy on a node, ignored"
    ]
    # photos is created at up (not declared, not existing), legacy is not, archive is declared
    assert sorted(stack_buckets(config)) == ["archive", "photos"]
    rules = stack_rules(config.functions)
    assert rules == {
        "photos": [
            NotificationRule("thumbnail-s3-1", "thumbnail", ("s3:ObjectCreated:*",)),
            NotificationRule(
                "thumbnail-s3-2", "thumbnail", ("s3:ObjectRemoved:*",), "uploads/", ".jpg"
            ),
        ],
        "legacy": [NotificationRule("thumbnail-s3-3", "thumbnail", ("s3:ObjectCreated:Put",))],
    }


def test_declared_bucket_settings_win() -> None:
    text = """\
name: pics
buckets:
  photos: {region: eu-west-1}
functions:
  f: {handler: h.f, events: [{s3: photos}, {s3: inbox}]}
"""
    config = parse_stack(text, Path("stackyard.yml"), {})
    declared = stack_buckets(config)
    assert declared["photos"].region == "eu-west-1" and declared["inbox"].region is None


def test_stack_file_errors_name_their_line() -> None:
    text = """\
name: pics
functions:
  f:
    handler: h.f
    events:
      - s3: {bucket: photos, event: "s3:ObjectCreated:Nope"}
      - s3: {bucket: photos, rules: [{prefix: a}, {prefix: b}]}
      - s3: {bucket: Bad_Name}
      - s3: {bucket: photos, rules: [{prefix: a, suffix: b}]}
      - s3: {bucket: photos, typo: 1}
      - {s3: photos, schedule: rate(1 minute)}
"""
    with pytest.raises(ConfigError) as error:
        parse_stack(text, Path("stackyard.yml"), {})
    problems = [str(p) for p in error.value.problems]
    assert any(
        p.startswith("stackyard.yml:6: functions.f.events.0.s3.event: unknown event")
        for p in problems
    )
    assert "stackyard.yml:7: functions.f.events.1.s3.rules: at most one prefix rule" in problems
    assert any(p.startswith("stackyard.yml:8: functions.f.events.2.s3.bucket") for p in problems)
    assert any(p.startswith("stackyard.yml:9: functions.f.events.3.s3.rules.0") for p in problems)
    assert "stackyard.yml:10: functions.f.events.4.s3.typo: unknown field" in problems
    assert any("exactly one of http, httpApi, schedule, stream, s3" in p for p in problems)


@pytest.mark.parametrize(
    ("events", "prefix", "suffix", "event", "key", "wanted"),
    [
        (("s3:ObjectCreated:*",), "", "", "ObjectCreated:Copy", "a", True),
        (("s3:ObjectCreated:Put",), "", "", "ObjectCreated:Copy", "a", False),
        (("s3:ObjectRemoved:*",), "", "", "ObjectCreated:Put", "a", False),
        (("s3:ObjectRemoved:Delete",), "", "", "ObjectRemoved:Delete", "a", True),
        (("s3:ObjectCreated:*",), "up/", ".jpg", "ObjectCreated:Put", "up/x.jpg", True),
        (("s3:ObjectCreated:*",), "up/", ".jpg", "ObjectCreated:Put", "up/x.png", False),
        (("s3:ObjectCreated:*",), "up/", ".jpg", "ObjectCreated:Put", "down/x.jpg", False),
    ],
)
def test_rule_matching(
    events: tuple[str, ...], prefix: str, suffix: str, event: str, key: str, wanted: bool
) -> None:
    assert NotificationRule("id", "f", events, prefix, suffix).matches(event, key) is wanted


def test_keys_are_encoded_as_s3_encodes_them() -> None:
    assert encoded_key("red flower.jpg") == "red+flower.jpg"
    assert encoded_key("a/b c/ü+&=.txt") == "a/b+c/%C3%BC%2B%26%3D.txt"


ARN = "arn:aws:lambda:us-east-1:000000000000:function:{}"


def document(*configs: str) -> bytes:
    body = "".join(f"<CloudFunctionConfiguration>{c}</CloudFunctionConfiguration>" for c in configs)
    ns = "http://s3.amazonaws.com/doc/2006-03-01/"
    return f'<NotificationConfiguration xmlns="{ns}">{body}</NotificationConfiguration>'.encode()


def config(event: str, prefix: str = "", suffix: str = "", function: str = "f") -> str:
    rules = "".join(
        f"<FilterRule><Name>{name}</Name><Value>{value}</Value></FilterRule>"
        for name, value in (("prefix", prefix), ("suffix", suffix))
        if value
    )
    filters = f"<Filter><S3Key>{rules}</S3Key></Filter>" if rules else ""
    return f"<CloudFunction>{ARN.format(function)}</CloudFunction><Event>{event}</Event>{filters}"


def test_configuration_documents() -> None:
    rules = parse_configuration(
        parse(
            document(
                config("s3:ObjectCreated:*", "a/"),
                "<Id>mine</Id>" + config("s3:ObjectRemoved:*", "a/"),
            )
        ),
        {"f"},
    )
    assert [(r.function, r.events, r.prefix) for r in rules] == [
        ("f", ("s3:ObjectCreated:*",), "a/"),
        ("f", ("s3:ObjectRemoved:*",), "a/"),
    ]
    assert rules[1].id == "mine" and rules[0].id  # an id is made up when none is given
    # disjoint prefixes, or disjoint suffixes, may share an event type
    parse_configuration(
        parse(document(config("s3:ObjectCreated:*", "a/"), config("s3:ObjectCreated:*", "b/"))),
        {"f"},
    )
    parse_configuration(
        parse(
            document(
                config("s3:ObjectCreated:*", suffix=".jpg"),
                config("s3:ObjectCreated:Put", suffix=".png"),
            )
        ),
        {"f"},
    )
    assert parse_configuration(parse(document()), {"f"}) == []


CREATED, REMOVED = "s3:ObjectCreated:*", "s3:ObjectRemoved:*"
BAD_RULE = "<Filter><S3Key><FilterRule><Name>middle</Name><Value>x</Value></FilterRule></S3Key>"
QUEUE = b"<NotificationConfiguration><QueueConfiguration/></NotificationConfiguration>"
REFUSED = [
    (document(config(CREATED, "a/"), config("s3:ObjectCreated:Put", "a/b")), "overlapping"),
    (document(config(CREATED), config(CREATED, suffix=".jpg")), "overlapping"),
    (document(config(CREATED, function="ghost")), "no function named 'ghost'"),
    (document(config(CREATED).replace(ARN.format("f"), "f")), "not a Lambda function ARN"),
    (document(config("s3:ObjectRestore:*")), "not supported for notifications"),
    (document(config(CREATED) + BAD_RULE + "</Filter>"), "prefix or suffix"),
    (document("<Id>x</Id>" + config(CREATED), "<Id>x</Id>" + config(REMOVED)), "same Id"),
]


@pytest.mark.parametrize(("body", "text"), REFUSED)
def test_refused_configurations(body: bytes, text: str) -> None:
    with pytest.raises(BucketError) as error:
        parse_configuration(parse(body), {"f"})
    assert error.value.code == "InvalidArgument"
    assert text in error.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (document("<Event>s3:ObjectCreated:*</Event>"), "MalformedXML"),
        (b"<Other/>", "MalformedXML"),
        (QUEUE, "NotImplemented"),
    ],
)
def test_malformed_and_unimplemented_configurations(body: bytes, code: str) -> None:
    with pytest.raises(BucketError) as error:
        parse_configuration(parse(body), {"f"})
    assert error.value.code == code

"""API Gateway proxy events and response mapping, against AWS's documented examples."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.functions.errors import MalformedResponse
from stackyard.functions.events import (
    HttpResponse,
    ProxyRequest,
    http_api_event,
    http_api_event_json,
    http_api_response,
    rest_event,
    rest_event_json,
    rest_response,
)

WHEN = datetime.fromtimestamp(1583348638.390, UTC)  # 04/Mar/2020:19:03:58 +0000


def test_http_api_event_matches_the_documented_example() -> None:
    # "Working with AWS Lambda proxy integrations for HTTP APIs", payload format 2.0
    request = ProxyRequest(
        method="POST",
        path="/my/path",
        query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            (b"Host", b"id.execute-api.us-east-1.amazonaws.com"),
            (b"Header1", b"value1"),
            (b"header2", b"value1"),
            (b"header2", b"value2"),
            (b"Cookie", b"cookie1; cookie2"),
            (b"User-Agent", b"agent"),
        ],
        body=b"Hello from Lambda",
        source_ip="192.0.2.1",
        stage="$default",
        route="$default",
        path_parameters={"parameter1": "value1"},
        stage_variables={"stageVariable1": "value1", "stageVariable2": "value2"},
        request_id="id",
        time=WHEN.timestamp(),
        api_id="api-id",
        account_id="123456789012",
    )
    event = http_api_event(request)
    assert event == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/my/path",
        "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
        "cookies": ["cookie1", "cookie2"],
        "headers": {
            "header1": "value1",
            "header2": "value1,value2",
            # present in a real request (the documented example leaves them out)
            "host": "id.execute-api.us-east-1.amazonaws.com",
            "user-agent": "agent",
        },
        "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": "POST",
                "path": "/my/path",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "agent",
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390,
        },
        "body": "Hello from Lambda",
        "pathParameters": {"parameter1": "value1"},
        "isBase64Encoded": False,
        "stageVariables": {"stageVariable1": "value1", "stageVariable2": "value2"},
    }


def test_http_api_event_leaves_out_absent_fields_and_names_the_route() -> None:
    request = ProxyRequest(
        method="GET",
        path="/items/7",
        query="",
        headers=[(b"host", b"localhost:8080")],
        body=b"",
        source_ip="127.0.0.1",
        stage="$default",
        route="/items/{id}",
        route_method="GET",
        path_parameters={"id": "7"},
        time=WHEN.timestamp(),
    )
    event = http_api_event(request)
    assert event["routeKey"] == "GET /items/{id}"
    assert event["requestContext"]["routeKey"] == "GET /items/{id}"
    for absent in ("cookies", "queryStringParameters", "body", "stageVariables"):
        assert absent not in event
    assert "multiValueHeaders" not in event and "multiValueQueryStringParameters" not in event
    assert event["isBase64Encoded"] is False


def test_rest_event_matches_the_documented_example() -> None:
    # "Set up Lambda proxy integrations in API Gateway", input format, payload 1.0
    request = ProxyRequest(
        method="GET",
        path="/my/path",
        query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            (b"header1", b"value1"),
            (b"header2", b"value1"),
            (b"header2", b"value2"),
            (b"Host", b"id.execute-api.us-east-1.amazonaws.com"),
            (b"User-Agent", b"user-agent"),
        ],
        body=b"Hello from Lambda!",
        source_ip="IP",
        stage="$default",
        route="/my/path",
        request_id="id=",
        time=WHEN.timestamp(),
        api_id="id",
        account_id="123456789012",
    )
    event = rest_event(request)
    assert event["resource"] == "/my/path"
    assert event["path"] == "/my/path"
    assert event["httpMethod"] == "GET"
    assert event["headers"] == {
        "header1": "value1",
        "header2": "value2",
        "Host": "id.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "user-agent",
    }
    assert event["multiValueHeaders"] == {
        "header1": ["value1"],
        "header2": ["value1", "value2"],
        "Host": ["id.execute-api.us-east-1.amazonaws.com"],
        "User-Agent": ["user-agent"],
    }
    assert event["queryStringParameters"] == {"parameter1": "value2", "parameter2": "value"}
    assert event["multiValueQueryStringParameters"] == {
        "parameter1": ["value1", "value2"],
        "parameter2": ["value"],
    }
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "id"
    assert context["authorizer"] == {"claims": None, "scopes": None}
    assert context["domainName"] == "id.execute-api.us-east-1.amazonaws.com"
    assert context["domainPrefix"] == "id"
    assert context["extendedRequestId"] == "id="
    assert context["httpMethod"] == "GET"
    identity = context["identity"]
    assert identity["sourceIp"] == "IP" and identity["userAgent"] == "user-agent"
    for key in (
        "accessKey",
        "accountId",
        "caller",
        "cognitoAuthenticationProvider",
        "cognitoAuthenticationType",
        "cognitoIdentityId",
        "cognitoIdentityPoolId",
        "principalOrgId",
        "user",
        "userArn",
    ):
        assert identity[key] is None
    assert context["path"] == "/$default/my/path"
    assert context["protocol"] == "HTTP/1.1"
    assert context["requestId"] == "id="
    assert context["requestTime"] == "04/Mar/2020:19:03:58 +0000"
    assert context["requestTimeEpoch"] == 1583348638390
    assert context["resourceId"] is None
    assert context["resourcePath"] == "/my/path"
    assert context["stage"] == "$default"
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] == "Hello from Lambda!"
    assert event["isBase64Encoded"] is False


def test_rest_event_absent_collections_are_null_and_stage_in_context_path() -> None:
    request = ProxyRequest(
        method="POST",
        path="/hello/bob",
        query="",
        headers=[],
        body=b"",
        source_ip="1.2.3.4",
        stage="dev",
        route="/hello/{name}",
        path_parameters={"name": "bob"},
    )
    event = rest_event(request)
    for key in (
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "stageVariables",
        "body",
    ):
        assert event[key] is None
    assert event["pathParameters"] == {"name": "bob"}
    assert event["requestContext"]["path"] == "/dev/hello/bob"
    assert event["requestContext"]["resourcePath"] == "/hello/{name}"


def test_binary_bodies_are_base64() -> None:
    png = bytes(range(256))
    for headers in ([(b"content-type", b"image/png")], []):
        request = ProxyRequest(
            method="POST",
            path="/",
            query="",
            headers=headers,
            body=png,
            source_ip="",
            stage="$default",
            route="$default",
        )
        for event in (rest_event(request), http_api_event(request)):
            assert event["isBase64Encoded"] is True
            assert base64.b64decode(event["body"]) == png
    text = ProxyRequest(
        method="POST",
        path="/",
        query="",
        headers=[(b"content-type", b"image/png")],
        body=b"abc",
        source_ip="",
        stage="$default",
        route="$default",
    )
    assert http_api_event(text)["isBase64Encoded"] is True  # binary type even if it decodes


def test_response_mapping_v1() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-One": "a"},
        "multiValueHeaders": {"X-One": ["b", "c"], "Set-Cookie": ["a=1", "b=2"]},
        "body": "created",
        "isBase64Encoded": False,
    }
    response = rest_response(json.dumps(result).encode())
    assert response.status == 201
    assert response.body == b"created"
    assert (b"Content-Type", b"text/plain") in response.headers
    assert [v for k, v in response.headers if k == b"X-One"] == [b"b", b"c"]
    assert [v for k, v in response.headers if k == b"Set-Cookie"] == [b"a=1", b"b=2"]
    binary = rest_response(
        json.dumps(
            {
                "statusCode": 200,
                "body": base64.b64encode(b"\x00\xff").decode(),
                "isBase64Encoded": True,
            }
        ).encode()
    )
    assert binary.body == b"\x00\xff"


def test_response_mapping_v2_inference_and_cookies() -> None:
    assert http_api_response(b'{"hello": "world"}') == HttpResponse(
        200, [(b"content-type", b"application/json")], b'{"hello": "world"}'
    )
    assert http_api_response(b'"Hello from Lambda!"').body == b"Hello from Lambda!"
    assert http_api_response(b"[1, 2]").body == b"[1, 2]"
    structured = http_api_response(
        json.dumps(
            {
                "statusCode": 200,
                "cookies": ["a=1", "b=2; Path=/"],
                "headers": {"content-type": "text/html"},
                "body": "<p>hi</p>",
            }
        ).encode()
    )
    assert structured.body == b"<p>hi</p>"
    assert [v for k, v in structured.headers if k == b"set-cookie"] == [b"a=1", b"b=2; Path=/"]


@pytest.mark.parametrize(
    "result",
    [
        b"not json",
        b'"just a string"',
        b'{"body": "no status"}',
        b'{"statusCode": "abc"}',
        b'{"statusCode": 200, "body": {"not": "a string"}}',
        b'{"statusCode": 200, "headers": []}',
        b'{"statusCode": 200, "isBase64Encoded": true, "body": "***"}',
        b'{"statusCode": 99}',
    ],
)
def test_malformed_v1(result: bytes) -> None:
    with pytest.raises(MalformedResponse):
        rest_response(result)


@pytest.mark.parametrize(
    "result",
    [
        b"not json",
        b'{"statusCode": 200, "body": 5}',
        b'{"statusCode": 200, "cookies": "a=1"}',
        b'{"statusCode": 1000}',
    ],
)
def test_malformed_v2(result: bytes) -> None:
    with pytest.raises(MalformedResponse):
        http_api_response(result)


# -- properties -----------------------------------------------------------------------------------

token = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=12,
)
header_values = st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b)
requests = st.builds(
    ProxyRequest,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.text(max_size=30).map(lambda p: "/" + p),
    query=st.text(max_size=40),
    headers=st.lists(st.tuples(token.map(str.encode), header_values), max_size=6),
    body=st.binary(max_size=200),
    source_ip=st.just("10.0.0.1"),
    stage=st.sampled_from(["$default", "dev"]),
    route=st.sampled_from(["$default", "/{proxy+}", "/items/{id}"]),
    path_parameters=st.none() | st.dictionaries(token, st.text(max_size=10), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(requests)
def test_events_never_fail_and_keep_the_body(request: ProxyRequest) -> None:
    for event in (rest_event(request), http_api_event(request)):
        json.dumps(event)
        body = event.get("body")
        if body is None:
            assert request.body == b""
        elif event["isBase64Encoded"]:
            assert base64.b64decode(body) == request.body
        else:
            assert body.encode() == request.body
    v2 = http_api_event(request)
    assert all(name == name.lower() for name in v2["headers"])
    assert "multiValueHeaders" not in v2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
results = json_values | st.fixed_dictionaries(
    {"statusCode": st.integers(0, 700) | st.text(max_size=3)},
    optional={
        "headers": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        "multiValueHeaders": st.dictionaries(st.text(max_size=6), json_values, max_size=2),
        "cookies": json_values,
        "body": json_values,
        "isBase64Encoded": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(results)
def test_response_mapping_raises_only_malformed(value: object) -> None:
    raw = json.dumps(value).encode()
    for mapper in (rest_response, http_api_response):
        try:
            response = mapper(raw)
        except MalformedResponse:
            continue
        assert 100 <= response.status <= 599
        assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in response.headers)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(200, 599))
def test_binary_response_round_trip(body: bytes, status: int) -> None:
    result = {
        "statusCode": status,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    for mapper in (rest_response, http_api_response):
        response = mapper(json.dumps(result).encode())
        assert response.status == status and response.body == body


@settings(max_examples=150, deadline=None)
@given(
    request=requests,
    authorizer=st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    stage_variables=st.none() | st.dictionaries(token, st.text(max_size=8), max_size=3),
    api_key=st.none() | st.text(max_size=8),
    api_key_id=st.none() | st.text(max_size=8),
)
def test_written_events_carry_every_value_as_given(
    request: ProxyRequest,
    authorizer: dict[str, object] | None,
    stage_variables: dict[str, str] | None,
    api_key: str | None,
    api_key_id: str | None,
) -> None:
    """The events are written as JSON text field by field: any text (quotes, backslashes,
    control and non-ASCII characters) and any authorizer context comes out as it went in."""
    request.authorizer = authorizer
    request.stage_variables = stage_variables
    request.api_key, request.api_key_id = api_key, api_key_id
    v1 = json.loads(rest_event_json(request))
    v2 = json.loads(http_api_event_json(request))
    for event in (v1, v2):
        assert event.get("stageVariables") == (stage_variables or None)
    assert v1["path"] == request.path and v2["rawPath"] == request.path
    assert v2["rawQueryString"] == request.query
    assert v1["requestContext"]["identity"]["apiKey"] == api_key
    assert v1["requestContext"]["identity"]["apiKeyId"] == api_key_id
    if authorizer is None:
        assert v1["requestContext"]["authorizer"] == {"claims": None, "scopes": None}
        assert "authorizer" not in v2["requestContext"]
    else:
        assert v1["requestContext"]["authorizer"] == authorizer
        assert v2["requestContext"]["authorizer"] == authorizer
    assert v1["requestContext"]["requestTimeEpoch"] == int(request.time * 1000)
    assert v2["requestContext"]["timeEpoch"] == int(request.time * 1000)

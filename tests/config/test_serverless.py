"""serverless.yml: variables, translation to a stack, warnings for what is not run, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.config import ConfigError, load_stack
from stackyard.config.serverless import parse_serverless

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-serverless"


def parse(text: str, environ: dict[str, str] | None = None, **options: str):  # type: ignore[no-untyped-def]
    return parse_serverless(text, Path("serverless.yml"), environ or {}, options)


def test_example_app_loads_with_stage_dependent_variables() -> None:
    dev = load_stack(EXAMPLE, {}, {})
    assert dev.config.name == "hello-serverless" and dev.config.stage == "dev"
    hello = dev.config.functions["hello"]
    assert hello.env["GREETING"] == "Hello" and hello.timeout == 10
    assert hello.env["TABLE_NAME"] == "hello-serverless-dev-items"
    assert hello.memory_mb == 1024  # the Serverless Framework's default
    assert (
        dev.config.functions["echo"].timeout == 6 and dev.config.functions["echo"].memory_mb == 256
    )
    kinds = [(e.http is not None, e.http_api is not None) for e in hello.events]
    assert kinds == [(True, False), (False, True)]
    assert hello.events[0].http is not None and hello.events[0].http.path == "/hello/{name}"
    assert dev.config.functions["tick"].events[0].schedule is not None
    prod = load_stack(EXAMPLE, {}, {"stage": "prod"})
    assert prod.config.stage == "prod"
    assert prod.config.functions["hello"].env["GREETING"] == "Good day"


def test_variables_nested_defaults_and_types() -> None:
    text = """
service: svc
custom:
  sizes: {dev: 512, prod: 2048}
  name: ${env:APP_NAME, ${self:service}-app}
  flag: ${opt:flag, true}
provider:
  name: aws
  runtime: python3.11
  environment:
    NAME: ${self:custom.name}
    REGION: ${aws:region}
    STAGE_AND_REGION: ${sls:stage}/${opt:region, 'us-east-1'}
    QUOTED: ${env:MISSING, "a, b"}
functions:
  f:
    handler: h.f
    memorySize: ${self:custom.sizes.${sls:stage}}
"""
    config, warnings = parse(text)
    env = config.functions["f"].env
    assert env == {
        "NAME": "svc-app",
        "REGION": "us-east-1",
        "STAGE_AND_REGION": "dev/us-east-1",
        "QUOTED": "a, b",
    }
    assert config.functions["f"].memory_mb == 512
    config, _ = parse(text, {"APP_NAME": "shop"}, stage="prod", region="eu-west-1")
    assert config.functions["f"].env["NAME"] == "shop"
    assert config.functions["f"].env["REGION"] == "eu-west-1"
    assert config.functions["f"].memory_mb == 2048
    assert warnings == []


def test_unimplemented_keys_are_warned_not_dropped_silently() -> None:
    text = """
service: svc
plugins: [serverless-offline]
provider:
  name: aws
  runtime: python3.11
  tracing: {lambda: true}
  httpApi: {cors: true, payload: "1.0"}
functions:
  f:
    handler: h.f
    layers: [arn:aws:lambda:layer]
    events:
      - sqs: arn:aws:sqs:queue
      - http: {path: /x, method: get, cors: true, authorizer: auth}
resources:
  Resources:
    Queue: {Type: AWS::SQS::Queue}
"""
    _, warnings = parse(text)
    joined = "\n".join(warnings)
    for expected in [
        "plugins",
        "resources",
        "provider.tracing",
        "provider.httpApi.payload",
        "functions.f.layers",
        "event type 'sqs'",
        "http.authorizer",
    ]:
        assert expected in joined, (expected, warnings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "service: s\nprovider: {name: aws}\nfunctions:\n  f: {handler: '${env:NOPE}'}\n",
            "serverless.yml:4: functions.f.handler: ${env:NOPE} has no value and no default",
        ),
        (
            "service: s\nfunctions:\n  f: {handler: '${ssm:/a/b}'}\n",
            "serverless.yml:3: functions.f.handler: variable source 'ssm' is not supported",
        ),
        (
            "service: s\ncustom: {a: '${self:custom.b}', b: '${self:custom.a}'}\n"
            "functions:\n  f: {handler: '${self:custom.a}'}\n",
            "cycle",
        ),
        (
            "service: s\nfunctions:\n  f: {handler: h.f, timeout: 1000}\n",
            "functions.f.timeout: Value error, must be between 0 and 900 seconds",
        ),
        (
            "service: s\nprovider: {runtime: nodejs18.x}\nfunctions:\n  f: {handler: h.f}\n",
            "functions.f.runtime",
        ),
    ],
)
def test_errors_name_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert expected.replace("Value error, ", "") in str(info.value)


@settings(max_examples=150, deadline=None)
@given(value=st.text(alphabet=st.sampled_from(list("${}:,. 'abcselfopenvstage")), max_size=40))
def test_fuzzed_variables_resolve_or_fail_cleanly(value: str) -> None:
    text = f"service: s\ncustom: {{x: 1}}\nfunctions:\n  f: {{handler: {value!r}}}\n"
    try:
        parse(text.replace("\\", ""))
    except ConfigError as exc:
        assert exc.problems


def test_cors_settings_are_translated() -> None:
    text = """
service: svc
provider:
  name: aws
  runtime: python3.11
  httpApi:
    cors:
      allowedOrigins: [https://app.example]
      allowedHeaders: [content-type, x-token]
      allowCredentials: true
      maxAge: 600
functions:
  f:
    handler: h.f
    events:
      - httpApi: GET /a
      - http: {path: b, method: get, cors: true}
      - http: {path: c, method: get, cors: {origin: "https://x.example", maxAge: 60}}
"""
    config, warnings = parse(text)
    assert warnings == []
    api, rest, custom = (e.http_api or e.http for e in config.functions["f"].events)
    assert api is not None and api.cors is not None
    assert api.cors.origins == ["https://app.example"] and api.cors.credentials is True
    assert api.cors.headers == ["content-type", "x-token"] and api.cors.max_age == 600
    assert rest is not None and rest.cors is not None and rest.cors.origins == ["*"]
    assert custom is not None and custom.cors is not None
    assert custom.cors.origins == ["https://x.example"] and custom.cors.max_age == 60

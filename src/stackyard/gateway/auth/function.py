"""The function (Lambda) REQUEST authorizer.

The gateway invokes the authorizer function with API Gateway's authorizer event — payload 2.0
(HTTP API: ``version``, ``type: REQUEST``, ``routeArn``, ``identitySource`` as a list,
``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies``, ``headers``,
``queryStringParameters``, ``requestContext``, ``pathParameters``, ``stageVariables``) or 1.0
(REST: ``type``, ``methodArn``, ``identitySource``/``authorizationToken``, ``resource``,
``path``, ``httpMethod``, ``headers``, ``multiValueHeaders``, the query string parameters,
``pathParameters``, ``stageVariables``, ``requestContext``) — and reads its answer:

- ``simple``: ``{"isAuthorized": true|false, "context": {...}}``;
- ``iam``: ``{"principalId", "policyDocument": {"Statement": [{"Action": "execute-api:Invoke",
  "Effect": "Allow"|"Deny", "Resource": [ARNs]}]}, "context", "usageIdentifierKey"}``; the
  request's ARN (``arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH``) must match an
  Allow statement (``*`` and ``?`` wildcards) and no Deny statement.

A missing identity source answers 401 without calling the function; a deny 403; a function
that fails (raises, times out, is busy) or answers anything else 500 ``AuthorizerFailure``.
Answers are cached for ``ttl`` seconds keyed by the identity source values (a policy is
cached whole and evaluated against each request's ARN, as API Gateway does).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ...asgi import Scope
from ...config.api import FunctionAuthorizerConfig
from ...functions.errors import FunctionError
from ...functions.events import ProxyRequest, http_api_event, rest_event
from ..lambda_proxy import FunctionInvoker
from ..proxy import request_path
from ..router import RouteMatch
from .cache import ResultCache
from .context import AuthContext
from .errors import AuthorizerFailure, Forbidden, Unauthorized
from .sources import identity_value

logger = logging.getLogger(__name__)

_ACTIONS = frozenset({"execute-api:Invoke", "execute-api:*", "*"})
_DROPPED_EVENT_FIELDS = ("body", "isBase64Encoded", "version")


@dataclass(frozen=True)
class ApiIdentity:
    """The names in the ARNs an authorizer sees."""

    region: str = "us-east-1"
    account_id: str = "000000000000"
    api_id: str = "stackyard"


@dataclass(frozen=True)
class Decision:
    """An authorizer function's answer: allowed outright (simple) or a policy (iam)."""

    authorized: bool | None
    """The simple answer; None for a policy."""
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    context: dict[str, Any] | None = None
    principal_id: str | None = None
    api_key: str | None = None

    def allows(self, arn: str) -> bool:
        if self.authorized is not None:
            return self.authorized
        if any(glob_match(p, arn) for p in self.deny):
            return False
        return any(glob_match(p, arn) for p in self.allow)


class FunctionAuthorizer:
    """One ``type: function`` entry of ``api.authorizers`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        config: FunctionAuthorizerConfig,
        invoker: FunctionInvoker | None,
        cache: ResultCache[Decision],
        identity: ApiIdentity,
    ) -> None:
        self.name = name
        self.config = config
        self.invoker = invoker
        self.cache = cache
        self.identity = identity

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def authorize(self, scope: Scope, match: RouteMatch[Any]) -> AuthContext:
        values: list[str] = []
        for source in self.config.identity_source:
            value = identity_value(scope, match, source)
            if not value:
                raise Unauthorized(bearer=False)
            values.append(value)
        arn = self._arn(scope, match)
        began = time.perf_counter()
        decision = await self.cache.load(
            (self.name, *values),
            self.config.ttl,
            lambda: self._call(scope, match, values, arn),
        )
        if not decision.allows(arn):
            raise Forbidden()
        return AuthContext(
            "function",
            context=decision.context or {},
            principal_id=decision.principal_id,
            api_key=decision.api_key,
            latency_ms=int((time.perf_counter() - began) * 1000),
        )

    def _arn(self, scope: Scope, match: RouteMatch[Any]) -> str:
        route = match.route
        ident = self.identity
        stage = route.stage or "$default"
        path = _event_path(scope, match)
        return (
            f"arn:aws:execute-api:{ident.region}:{ident.account_id}:{ident.api_id}/{stage}/"
            f"{scope['method']}/{path.lstrip('/')}"
        )

    async def _call(
        self, scope: Scope, match: RouteMatch[Any], values: list[str], arn: str
    ) -> Decision:
        if self.invoker is None:
            raise AuthorizerFailure("the gateway has no function runtime")
        event = self.event(scope, match, values, arn)
        function = self.config.function
        try:
            result = await self.invoker.invoke(function, json.dumps(event).encode())
        except FunctionError as exc:
            logger.warning("authorizer %s: function %s failed: %s", self.name, function, exc)
            raise AuthorizerFailure() from exc
        if result.function_error:
            logger.warning("authorizer %s: function %s raised", self.name, function)
            raise AuthorizerFailure()
        try:
            answer = json.loads(result.payload)
            return parse_answer(answer, self.config.response)
        except (ValueError, TypeError) as exc:
            logger.warning("authorizer %s: bad answer from %s: %s", self.name, function, exc)
            raise AuthorizerFailure() from exc

    def event(
        self, scope: Scope, match: RouteMatch[Any], values: list[str], arn: str
    ) -> dict[str, Any]:
        """The authorizer event of the configured payload version."""
        route = match.route
        rest = self.config.payload_version == "1.0"
        client = scope.get("client")
        headers = scope["headers"]
        request = ProxyRequest(
            method=scope["method"],
            path=_event_path(scope, match),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(_title(n), v) for n, v in headers] if rest else headers,
            body=b"",
            source_ip=str(client[0]) if client else "127.0.0.1",
            stage=route.stage or "$default",
            route=route.resource or route.path,
            route_method="ANY" if "ANY" in route.methods else scope["method"],
            path_parameters=match.params or None,
            stage_variables=route.stage_variables or None,
            request_id=str(uuid.uuid4()),
            api_id=self.identity.api_id,
            account_id=self.identity.account_id,
        )
        if rest:
            proxy = rest_event(request)
            proxy["requestContext"].pop("authorizer", None)
            head: dict[str, Any] = {
                "version": "1.0",
                "type": "REQUEST",
                "methodArn": arn,
                "identitySource": ",".join(values),
                "authorizationToken": ",".join(values),
            }
        else:
            proxy = http_api_event(request)
            head = {"version": "2.0", "type": "REQUEST", "routeArn": arn, "identitySource": values}
        for name in _DROPPED_EVENT_FIELDS:
            proxy.pop(name, None)
        return {**head, **proxy}


def parse_answer(answer: object, kind: str) -> Decision:
    """A :class:`Decision` from an authorizer's JSON answer; ValueError when malformed."""
    if not isinstance(answer, dict):
        raise ValueError("the answer is not an object")
    context = answer.get("context")
    if context is not None and not isinstance(context, dict):
        raise ValueError("context must be an object")
    if kind == "simple":
        authorized = answer.get("isAuthorized")
        if not isinstance(authorized, bool):
            raise ValueError("isAuthorized must be a boolean")
        return Decision(authorized, context=context)
    principal = answer.get("principalId")
    key = answer.get("usageIdentifierKey")
    if principal is not None and not isinstance(principal, str | int):
        raise ValueError("principalId must be a string")
    if key is not None and not isinstance(key, str):
        raise ValueError("usageIdentifierKey must be a string")
    document = answer.get("policyDocument")
    if not isinstance(document, dict):
        raise ValueError("policyDocument must be an object")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise ValueError("policyDocument.Statement must be a list")
    allow: list[str] = []
    deny: list[str] = []
    for statement in statements:
        if not isinstance(statement, dict):
            raise ValueError("a policy statement must be an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError("Effect must be Allow or Deny")
        actions = _strings(statement.get("Action"), "Action")
        if not any(a in _ACTIONS for a in actions):
            continue
        patterns = _strings(statement.get("Resource"), "Resource")
        (allow if effect == "Allow" else deny).extend(patterns)
    return Decision(
        None,
        allow=tuple(allow),
        deny=tuple(deny),
        context=context,
        principal_id=None if principal is None else str(principal),
        api_key=key,
    )


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches an IAM resource ``pattern`` (``*``: any run of characters,
    ``?``: one); the usual two-pointer walk, no regex and no exponential backtracking."""
    p = t = 0
    star = -1
    mark = 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _strings(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"{what} must be a string or a list of strings")


def _event_path(scope: Scope, match: RouteMatch[Any]) -> str:
    path = request_path(scope)
    route = match.route
    if route.payload_version == "1.0" and route.stage:
        path = path.removeprefix(f"/{route.stage}") or "/"
    return path


def _title(name: bytes) -> bytes:
    return b"-".join(part[:1].upper() + part[1:] for part in name.split(b"-"))

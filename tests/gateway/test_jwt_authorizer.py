"""JWT authorizers on a served gateway: tokens made by PyJWT, keys from a JWKS served by a real
aiohttp server and from a JWKS file, an HS256 secret; the claims reach the upstream."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.config.api import ApiConfig, JwtAuthorizerConfig, MockConfig
from stackyard.gateway import Gateway, RouteSpec
from stackyard.gateway.auth.jwt import bearer_token, token_scopes
from stackyard.gateway.cors import CorsPolicy
from stackyard.gateway.policy import RoutePolicy
from stackyard.serving import AsgiServer, free_port

from .conftest import Backend, Served, make_table

ISSUER = "https://issuer.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
SECRET = "a-shared-secret-long-enough-for-hs512-" + "x" * 32


def jwk(key: Any, kid: str) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        out: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        out = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
    return {**out, "kid": kid, "use": "sig"}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "shop",
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "scope": "items.read profile",
        "email": "ada@example.com",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any = RSA_KEY, alg: str = "RS256", kid: str | None = "rsa1", **changes: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(**changes), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_token(secret: bytes, kid: str | None = "rsa1", alg: str = "HS256") -> str:
    """A token signed by hand (PyJWT refuses a PEM key as HMAC secret, attackers do not)."""
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


@dataclass
class Setup:
    served: Served
    backend: Backend
    jwks: Backend
    keys: list[dict[str, Any]]

    async def call(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, Any, Any]:
        status, response_headers, body = await self.served.request(method, path, headers=headers)
        return status, response_headers, json.loads(body) if body else None

    def upstream_auth(self) -> dict[str, Any] | None:
        headers = dict((k.lower(), v) for k, v in self.backend.requests[-1]["headers"])
        value = headers.get("x-stackyard-authorizer")
        return None if value is None else json.loads(value)  # type: ignore[no-any-return]


Factory = Callable[..., Awaitable[Backend]]


@pytest.fixture
async def setup(
    serve: Callable[..., Awaitable[Served]], make_backend: Factory, tmp_path: Path
) -> Setup:
    keys = [jwk(RSA_KEY, "rsa1"), jwk(EC_KEY, "ec1")]

    async def jwks_handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"keys": keys})

    jwks = await make_backend("jwks", jwks_handler)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "jwks.json").write_text(json.dumps({"keys": [jwk(EC_KEY, "ec1")]}))
    api = ApiConfig(
        authorizers={
            "users": JwtAuthorizerConfig(
                type="jwt",
                issuer=ISSUER,
                audience=["shop", "admin"],
                jwks=f"http://127.0.0.1:{jwks.port}/jwks.json",
            ),
            "lenient": JwtAuthorizerConfig(
                type="jwt", audience="shop", jwks="keys/jwks.json", leeway=30
            ),
            "shared": JwtAuthorizerConfig(type="jwt", secret=SECRET, issuer=ISSUER),
            "by-query": JwtAuthorizerConfig(
                type="jwt", secret=SECRET, identity_source="query.token"
            ),
        }
    )
    backend = await make_backend("items")
    served = await serve(api=api, root=tmp_path)
    cors = CorsPolicy(origins=("https://app.example",))

    def route(path: str, authorizer: str | None, *scopes: str) -> RouteSpec:
        policy = RoutePolicy(authorizer=authorizer, scopes=scopes)
        return RouteSpec(path, service="items", policy=policy, cors=cors)

    routes = [
        route("/items/{id}", "users", "items.read", "items.admin"),
        route("/any", "users"),
        route("/open", None),
        route("/lenient", "lenient"),
        route("/hs", "shared"),
        route("/query", "by-query"),
        route("/missing", "no-such-authorizer"),
    ]
    served.gateway.update(make_table(1, routes, {"items": [backend]}))
    return Setup(served, backend, jwks, keys)


async def test_valid_token_passes_and_claims_reach_the_upstream(setup: Setup) -> None:
    status, _, body = await setup.call("/items/1", bearer(token()))
    assert status == 200, body
    auth = setup.upstream_auth()
    assert auth is not None
    assert auth["type"] == "jwt" and auth["principalId"] == "user-1"
    assert auth["claims"]["email"] == "ada@example.com" and auth["claims"]["iss"] == ISSUER
    assert auth["scopes"] == ["items.read", "profile"]
    assert setup.jwks.hits == 1  # loaded at start, never per request
    for _ in range(3):
        assert (await setup.call("/items/1", bearer(token(EC_KEY, "ES256", "ec1"))))[0] == 200
    assert setup.jwks.hits == 1


async def test_a_client_cannot_forge_the_authorizer_header(setup: Setup) -> None:
    forged = {"x-stackyard-authorizer": '{"principalId": "admin"}'}
    assert (await setup.call("/open", forged))[0] == 200
    assert setup.upstream_auth() is None
    status, _, _ = await setup.call("/items/1", {**forged, **bearer(token())})
    assert status == 200
    auth = setup.upstream_auth()
    assert auth is not None and auth["principalId"] == "user-1"
    headers = [k.lower() for k, _ in setup.backend.requests[-1]["headers"]]
    assert headers.count("x-stackyard-authorizer") == 1


async def test_missing_or_non_bearer_credentials_are_401(setup: Setup) -> None:
    status, headers, body = await setup.call("/items/1")
    assert status == 401
    assert body == {"error": {"code": "Unauthorized", "message": "missing bearer token"}}
    assert headers["www-authenticate"] == "Bearer"
    assert headers["content-type"] == "application/json"
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "Bearer a b", "Bearer é"):
        status, headers, _ = await setup.call("/items/1", {"authorization": value})
        assert status == 401, value
        assert headers["www-authenticate"].startswith("Bearer")
    assert setup.backend.hits == 0


async def test_tampered_token_is_rejected(setup: Setup) -> None:
    header, payload, signature = token().split(".")
    forged = b64(json.dumps(claims(sub="admin")).encode())
    status, headers, body = await setup.call("/items/1", bearer(f"{header}.{forged}.{signature}"))
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="the token signature does not verify"'
    )
    assert body["error"]["code"] == "Unauthorized"
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert (await setup.call("/items/1", bearer(f"{header}.{payload}.{flipped}")))[0] == 401
    assert (await setup.call("/items/1", bearer(f"{header}.{payload}")))[0] == 401
    assert setup.backend.hits == 0


async def test_expiry_and_not_before_with_leeway(setup: Setup) -> None:
    now = int(time.time())
    ec_token = lambda **c: token(EC_KEY, "ES256", "ec1", **c)  # noqa: E731
    expired = token(exp=now - 10)
    status, headers, body = await setup.call("/any", bearer(expired))
    assert status == 401 and body["error"]["message"] == "the token has expired"
    assert 'error="invalid_token"' in headers["www-authenticate"]
    future = token(nbf=now + 60)
    status, _, body = await setup.call("/any", bearer(future))
    assert status == 401 and body["error"]["message"] == "the token is not valid yet"
    assert (await setup.call("/any", bearer(token(exp=None))))[0] == 401  # exp is required
    # the lenient authorizer allows 30 s of clock skew
    assert (await setup.call("/lenient", bearer(ec_token(exp=now - 10))))[0] == 200
    assert (await setup.call("/lenient", bearer(ec_token(nbf=now + 10))))[0] == 200
    assert (await setup.call("/lenient", bearer(ec_token(iat=now + 10))))[0] == 200
    assert (await setup.call("/lenient", bearer(ec_token(exp=now - 60))))[0] == 401
    assert (await setup.call("/lenient", bearer(ec_token(nbf=now + 60))))[0] == 401


async def test_a_token_seen_valid_still_expires(setup: Setup) -> None:
    short = token(exp=int(time.time()) + 1)
    assert (await setup.call("/any", bearer(short)))[0] == 200
    assert (await setup.call("/any", bearer(short)))[0] == 200
    await asyncio.sleep(1.1 - time.time() % 1 + 0.05)
    status, _, body = await setup.call("/any", bearer(short))
    assert status == 401 and body["error"]["message"] == "the token has expired"


async def test_a_removed_key_no_longer_verifies(setup: Setup) -> None:
    good = token()
    assert (await setup.call("/any", bearer(good)))[0] == 200
    users = setup.served.gateway.authorizers.get("users")
    users.keys.min_interval = 0.2  # type: ignore[union-attr]
    setup.keys[:] = [jwk(OTHER_RSA_KEY, "rsa2")]  # rsa1 rotated out
    await asyncio.sleep(0.25)
    assert (await setup.call("/any", bearer(token(OTHER_RSA_KEY, kid="rsa2"))))[0] == 200
    status, _, body = await setup.call("/any", bearer(good))
    assert status == 401 and body["error"]["message"] == "the token's key is unknown"


async def test_issuer_and_audience(setup: Setup) -> None:
    status, _, body = await setup.call("/any", bearer(token(iss="https://evil.example")))
    assert status == 401 and body["error"]["message"] == "the token has the wrong issuer"
    assert (await setup.call("/any", bearer(token(iss=None))))[0] == 401
    status, _, body = await setup.call("/any", bearer(token(aud="other")))
    assert status == 401 and body["error"]["message"] == "the token has the wrong audience"
    assert (await setup.call("/any", bearer(token(aud=None))))[0] == 401
    assert (await setup.call("/any", bearer(token(aud=["other", "admin"]))))[0] == 200
    # an access token without aud is checked by its client_id (as API Gateway does)
    assert (await setup.call("/any", bearer(token(aud=None, client_id="shop"))))[0] == 200
    assert (await setup.call("/any", bearer(token(aud=None, client_id="nope"))))[0] == 401


async def test_alg_none_is_rejected(setup: Setup) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa1"})
    for path in ("/any", "/hs", "/lenient"):
        status, _, body = await setup.call(path, bearer(unsigned))
        assert status == 401, path
        assert body["error"]["message"] == "token algorithm not allowed"
    # "None" / "NONE" spellings too
    header = b64(json.dumps({"alg": "NONE", "kid": "rsa1"}).encode())
    assert (await setup.call("/any", bearer(f"{header}.{b64(b'{}')}.")))[0] == 401
    assert setup.backend.hits == 0


async def test_hmac_signed_with_the_public_key_is_rejected(setup: Setup) -> None:
    """Algorithm confusion: the RSA public key (as served in the JWKS) used as HS256 secret."""
    confused = hmac_token(RSA_PEM)
    status, _, body = await setup.call("/any", bearer(confused))
    assert status == 401 and body["error"]["message"] == "token algorithm not allowed"
    # and the same against the secret authorizer: a valid HMAC, but not with its secret
    assert (await setup.call("/hs", bearer(confused)))[0] == 401
    assert (await setup.call("/hs", bearer(hmac_token(SECRET.encode()))))[0] == 200


async def test_wrong_key_and_unknown_kid(setup: Setup) -> None:
    status, _, body = await setup.call("/any", bearer(token(OTHER_RSA_KEY)))
    assert status == 401 and body["error"]["message"] == "the token signature does not verify"
    # an ES256 header on the RSA key's kid: the key's type fixes the algorithms
    status, _, body = await setup.call("/any", bearer(token(EC_KEY, "ES256", "rsa1")))
    assert status == 401 and body["error"]["message"] == "token algorithm not allowed for its key"
    status, _, body = await setup.call("/any", bearer(token(OTHER_RSA_KEY, kid="rotated")))
    assert status == 401 and body["error"]["message"] == "the token's key is unknown"
    assert setup.jwks.hits == 1  # the set was loaded just now: not again
    users = setup.served.gateway.authorizers.get("users")
    users.keys.min_interval = 0.3  # type: ignore[union-attr]
    await asyncio.sleep(0.35)
    assert (await setup.call("/any", bearer(token(OTHER_RSA_KEY, kid="rotated"))))[0] == 401
    assert setup.jwks.hits == 2  # an unknown kid loads the set again...
    for kid in ("a", "b", "c"):
        assert (await setup.call("/any", bearer(token(OTHER_RSA_KEY, kid=kid))))[0] == 401
    assert setup.jwks.hits == 2  # ...at most once per interval


async def test_key_rotation_is_picked_up(setup: Setup) -> None:
    users = setup.served.gateway.authorizers.get("users")
    assert users is not None
    users.keys.min_interval = 0.3  # type: ignore[attr-defined]
    setup.keys.append(jwk(OTHER_RSA_KEY, "rotated"))
    rotated = token(OTHER_RSA_KEY, kid="rotated")
    await asyncio.sleep(0.35)
    # concurrent requests with the new kid share one load
    results = await asyncio.gather(*(setup.call("/any", bearer(rotated)) for _ in range(5)))
    assert [r[0] for r in results] == [200] * 5
    assert setup.jwks.hits == 2


async def test_scopes(setup: Setup) -> None:
    assert (await setup.call("/items/1", bearer(token(scope="items.admin"))))[0] == 200
    scp = token(scope=None, scp=["x", "items.read"])
    assert (await setup.call("/items/1", bearer(scp)))[0] == 200
    status, headers, body = await setup.call("/items/1", bearer(token(scope="profile email")))
    assert status == 403
    assert body["error"]["code"] == "Forbidden"
    assert headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="items.read items.admin"'
    )
    assert (await setup.call("/items/1", bearer(token(scope=None))))[0] == 403
    # a route without scopes takes any valid token
    assert (await setup.call("/any", bearer(token(scope=None))))[0] == 200


async def test_hs256_secret(setup: Setup) -> None:
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert (await setup.call("/hs", bearer(good)))[0] == 200
    other = jwt.encode(claims(), "another-secret-of-at-least-32-bytes!!", algorithm="HS256")
    assert (await setup.call("/hs", bearer(other)))[0] == 401
    hs512 = jwt.encode(claims(), SECRET, algorithm="HS512")
    assert (await setup.call("/hs", bearer(hs512)))[0] == 401  # only HS256 by default
    rs = token()
    assert (await setup.call("/hs", bearer(rs)))[0] == 401


async def test_token_from_a_query_parameter(setup: Setup) -> None:
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert (await setup.call(f"/query?token={good}"))[0] == 200
    assert (await setup.call(f"/query?other={good}"))[0] == 401
    assert (await setup.call("/query", bearer(good)))[0] == 401


async def test_unknown_authorizer_fails_closed(setup: Setup) -> None:
    status, _, body = await setup.call("/missing", bearer(token()))
    assert status == 500 and body["error"]["code"] == "AuthorizerFailure"
    assert setup.backend.hits == 0


async def test_cors_preflight_needs_no_credentials(setup: Setup) -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "GET"}
    status, headers, _ = await setup.served.request("OPTIONS", "/items/1", headers=preflight)
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert setup.backend.hits == 0
    # the actual request still needs its token
    status, _, _ = await setup.call("/items/1", {"origin": "https://app.example"})
    assert status == 401


async def test_jwks_url_down_at_start(
    serve: Callable[..., Awaitable[Served]], make_backend: Factory
) -> None:
    """The gateway starts without its keys and answers 401 until the JWKS can be loaded."""
    keys: list[dict[str, Any]] = []

    async def jwks_handler(request: web.Request) -> web.StreamResponse:
        if not keys:
            return web.Response(status=503)
        return web.json_response({"keys": keys})

    jwks = await make_backend("jwks", jwks_handler)
    api = ApiConfig(authorizers={"users": JwtAuthorizerConfig(type="jwt", jwks=jwks_url(jwks))})
    backend = await make_backend("items")
    served = await serve(api=api)
    users = served.gateway.authorizers.get("users")
    assert users is not None
    users.keys.retry_interval = 0.2  # type: ignore[attr-defined]
    route = RouteSpec("/any", service="items", policy=RoutePolicy(authorizer="users"))
    served.gateway.update(make_table(1, [route], {"items": [backend]}))
    assert (await served.request("GET", "/any", headers=bearer(token())))[0] == 401
    keys.append(jwk(RSA_KEY, "rsa1"))
    assert (await served.request("GET", "/any", headers=bearer(token())))[0] == 401
    await asyncio.sleep(0.25)
    assert (await served.request("GET", "/any", headers=bearer(token())))[0] == 200


def jwks_url(backend: Backend) -> str:
    return f"http://127.0.0.1:{backend.port}/jwks.json"


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc", "header.authorization") == "abc"
    assert bearer_token("bearer   abc ", "header.authorization") == "abc"
    assert bearer_token("abc", "query.token") == "abc"
    assert bearer_token("Bearer abc", "header.x-token") == "abc"
    assert token_scopes({"scope": "a b a", "scp": ["c", 1]}) == ("a", "b", "c")
    assert token_scopes({"scp": "a b"}) == ("a", "b")
    assert token_scopes({"scope": 5}) == ()


def test_config_refuses_mismatched_algorithms() -> None:
    with pytest.raises(ValueError, match="a secret verify"):
        JwtAuthorizerConfig(type="jwt", secret="s", algorithms=["RS256"])
    with pytest.raises(ValueError, match="JWKS keys verify"):
        JwtAuthorizerConfig(type="jwt", jwks="k.json", algorithms=["HS256"])
    with pytest.raises(ValueError, match="none"):
        JwtAuthorizerConfig(type="jwt", jwks="k.json", algorithms=["none"])
    with pytest.raises(ValueError, match=r"header\.NAME or query\.NAME"):
        JwtAuthorizerConfig(type="jwt", secret="s", identity_source="path.token")
    JwtAuthorizerConfig(type="jwt", jwks="k.json", algorithms=["RS256", "ES256"])


@pytest.fixture(scope="module")
def fuzz_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A gateway with JWT routes to a mock answer, served on its own loop in a thread."""
    root = tmp_path_factory.mktemp("jwks")
    (root / "jwks.json").write_text(json.dumps({"keys": [jwk(RSA_KEY, "rsa1")]}))
    api = ApiConfig(
        authorizers={
            "file": JwtAuthorizerConfig(type="jwt", jwks="jwks.json", audience="shop"),
            "shared": JwtAuthorizerConfig(type="jwt", secret=SECRET),
        }
    )
    routes = [
        RouteSpec(
            f"/{name}",
            integration="mock",
            mock=MockConfig(status=200, body="ok"),
            policy=RoutePolicy(authorizer=name, scopes=("items.read",)),
        )
        for name in ("file", "shared")
    ]
    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        gateway = Gateway(api=api, root=root)
        gateway.update(make_table(1, routes, {}))
        await gateway.start()
        server = AsgiServer(gateway, "127.0.0.1", port)
        await server.start()
        ready.set()
        await stop.wait()
        await server.stop()
        await gateway.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(20)
    yield port
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(20)
    loop.close()


_b64_chars = st.sampled_from([*"abcXYZ0189-_=+/.", "eyJ", "eyJhbGciOiJ", "."])
_segments = st.lists(_b64_chars, max_size=40).map("".join)
# visible latin-1 (DEL is no valid header character: the HTTP server itself answers 400)
_printable = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=60,
)
_real_parts = st.sampled_from([*token().split("."), b64(b'{"alg":"RS256","kid":"rsa1"}')])
_tokens = st.one_of(
    _segments,
    st.lists(st.one_of(_segments, _real_parts), min_size=1, max_size=4).map(".".join),
    _printable,
)
_values = st.one_of(
    _tokens.map(lambda t: "Bearer " + t),
    st.tuples(st.sampled_from(["bearer", "BEARER", "Basic", "", "Bearer\t"]), _tokens).map(
        " ".join
    ),
    _printable,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_values, path=st.sampled_from(["/file", "/shared"]))
def test_random_authorization_values_never_5xx(fuzz_port: int, value: str, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fuzz_port, timeout=10)
    try:
        conn.putrequest("GET", path)
        conn.putheader("Authorization", value.strip().encode("latin-1"))
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 401, (resp.status, body)
    assert json.loads(body)["error"]["code"] == "Unauthorized"
    assert resp.getheader("www-authenticate", "").startswith("Bearer")

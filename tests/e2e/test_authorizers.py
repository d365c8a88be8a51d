"""Authorizers on a real node: a JWT authorizer with keys from a JWKS file beside the stack and a
function authorizer run by the node's function runtime; CORS preflights pass without tokens."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stackyard.testing import NodeProcess

APP = Path(__file__).parent / "apps" / "authorizers"
KEY = ec.generate_private_key(ec.SECP256R1())


def token(**changes: object) -> str:
    claims = {
        "iss": "https://issuer.example",
        "aud": "shop",
        "sub": "user-9",
        "exp": int(time.time()) + 300,
        "scope": "profile",
        **changes,
    }
    return jwt.encode(claims, KEY, algorithm="ES256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base = tmp_path_factory.mktemp("authorizers")
    stack = base / "stack"
    shutil.copytree(APP, stack)
    public = jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    (stack / "keys").mkdir()
    (stack / "keys" / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1"}]}))
    with NodeProcess(stack, data_dir=base / "data") as running:
        running.wait_ready(60)
        yield running


def test_jwt_claims_reach_the_function(node: NodeProcess) -> None:
    response = httpx.get(
        f"{node.gateway_url}/me", headers={"authorization": f"Bearer {token()}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    authorizer = response.json()
    assert authorizer["jwt"]["claims"]["sub"] == "user-9"
    assert authorizer["jwt"]["scopes"] == ["profile"]


def test_jwt_refusals(node: NodeProcess) -> None:
    url = f"{node.gateway_url}/me"
    response = httpx.get(url, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "Unauthorized"
    expired = token(exp=int(time.time()) - 60)
    response = httpx.get(url, headers={"authorization": f"Bearer {expired}"}, timeout=10)
    assert response.status_code == 401
    other = token(scope="email")
    response = httpx.get(url, headers={"authorization": f"Bearer {other}"}, timeout=10)
    assert response.status_code == 403


def test_preflight_needs_no_token(node: NodeProcess) -> None:
    response = httpx.options(
        f"{node.gateway_url}/me",
        headers={"origin": "https://app.example", "access-control-request-method": "GET"},
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_function_authorizer(node: NodeProcess) -> None:
    url = f"{node.gateway_url}/gated"
    response = httpx.get(url, headers={"x-token": "open-sesame"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"lambda": {"caller": "ali-baba"}}
    assert httpx.get(url, headers={"x-token": "nope"}, timeout=10).status_code == 403
    response = httpx.get(url, timeout=10)
    assert response.status_code == 401
    assert httpx.get(f"{node.gateway_url}/public", timeout=10).status_code == 200

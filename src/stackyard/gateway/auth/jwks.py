"""Verification keys of JWT authorizers: a JSON Web Key Set from a file or a URL.

A key's type fixes the algorithms it verifies (RSA: RS256/384/512, PS256/384/512; EC P-256,
P-384, P-521: ES256, ES384, ES512; OKP Ed25519/Ed448: EdDSA), narrowed by the key's own ``alg``
and by the authorizer's ``algorithms``; the token's header only picks one of those. Symmetric
(``oct``) keys and keys whose ``use`` is not ``sig`` are ignored (an HS256 authorizer uses
``secret``), so a public key can never be used as an HMAC secret.

:class:`KeySet` loads the set when the gateway starts (a URL through aiohttp) and loads it again
when a token names a key id it does not know — at most once per ``min_interval`` seconds, one
load shared by the requests that wait for it — so a key rotation is picked up without a restart
and a stream of made-up key ids cannot turn into a stream of fetches. Nothing is fetched for a
token whose key is known.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

logger = logging.getLogger(__name__)

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS.values()) | {"EdDSA"}
MAX_JWKS_BYTES = 1024 * 1024

_PRIVATE = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


class JwksError(Exception):
    """A key set could not be loaded (unreadable, not JSON, no usable key)."""


@dataclass(frozen=True)
class VerificationKey:
    """A key (a ``cryptography`` public key, or the bytes of an HMAC secret), its id and the
    algorithms it may verify."""

    kid: str | None
    key: Any
    algorithms: frozenset[str]


def key_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The algorithms a JWK's type allows (before its ``alg`` and the configuration narrow it)."""
    kty = jwk.get("kty")
    if kty == "RSA":
        return RSA_ALGORITHMS
    if kty == "EC":
        alg = EC_ALGORITHMS.get(str(jwk.get("crv")))
        return frozenset({alg}) if alg else frozenset()
    if kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448"):
        return frozenset({"EdDSA"})
    return frozenset()


def parse_jwks(document: object, allowed: frozenset[str]) -> dict[str | None, VerificationKey]:
    """The usable signing keys of a JWKS document, by ``kid`` (None for a key without one)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('a JWKS is an object with a "keys" list')
    keys: dict[str | None, VerificationKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        algorithms = key_algorithms(jwk) & allowed
        alg = jwk.get("alg")
        if alg is not None:
            algorithms &= {alg}
        kid = jwk.get("kid")
        if not algorithms or not (kid is None or isinstance(kid, str)):
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=sorted(algorithms)[0]).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            logger.warning("JWKS key %r skipped: %s", kid, exc)
            continue
        if isinstance(key, _PRIVATE):
            key = key.public_key()
        keys[kid] = VerificationKey(kid, key, algorithms)
    return keys


class KeySet:
    """The keys of one JWKS ``source`` (an ``http(s)://`` URL, or a file relative to ``root``)."""

    def __init__(
        self,
        source: str,
        allowed: frozenset[str],
        *,
        root: Path | None = None,
        min_interval: float = 30.0,
        retry_interval: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self.source = source
        self.is_url = source.startswith(("http://", "https://"))
        self.path = None if self.is_url else (root or Path.cwd()) / source
        self.allowed = allowed
        self.min_interval = min_interval
        self.retry_interval = retry_interval
        self.timeout = timeout
        self.loads = 0  # completed load attempts
        self.version = 0  # +1 each time the keys change
        self._keys: dict[str | None, VerificationKey] = {}
        self._loaded_at = -math.inf  # when the last load ended
        self._last_ok = False
        self._loading: asyncio.Task[None] | None = None

    @property
    def keys(self) -> Mapping[str | None, VerificationKey]:
        return self._keys

    async def start(self) -> None:
        """First load; a failure is logged and leaves the set empty (retried on demand)."""
        await self._load_once()

    async def stop(self) -> None:
        task, self._loading = self._loading, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def get(self, kid: str | None) -> VerificationKey | None:
        return self._keys.get(kid)

    async def find(self, kid: str | None) -> VerificationKey | None:
        """The key ``kid``, loading the set again first when it is unknown and a load is due."""
        key = self._keys.get(kid)
        if key is not None or (self._loading is None and not self.load_due()):
            return key
        await self._load_once()
        return self._keys.get(kid)

    def load_due(self) -> bool:
        """Whether an unknown key id may load the set again now."""
        interval = self.min_interval if self._last_ok else self.retry_interval
        return time.monotonic() >= self._loaded_at + interval

    async def _load_once(self) -> None:
        """Runs one load, or waits for the one in progress; never more than one at a time."""
        task = self._loading
        if task is None:
            task = self._loading = asyncio.get_running_loop().create_task(self._load())
            task.add_done_callback(self._loaded)
        await asyncio.shield(task)

    def _loaded(self, task: asyncio.Task[None]) -> None:
        if self._loading is task:
            self._loading = None

    async def _load(self) -> None:
        try:
            document = await (self._fetch() if self.is_url else asyncio.to_thread(self._read))
            keys = parse_jwks(document, self.allowed)
            if not keys:
                raise JwksError("no usable signing key")
        except (JwksError, OSError, ValueError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("JWKS %s could not be loaded: %s", self.source, exc)
            self._last_ok = False
        else:
            if keys.keys() != self._keys.keys() or any(
                self._keys[kid] != key for kid, key in keys.items()
            ):
                self.version += 1
            self._keys = keys
            self._last_ok = True
        finally:
            self._loaded_at = time.monotonic()
            self.loads += 1

    def _read(self) -> object:
        assert self.path is not None
        with self.path.open("rb") as file:
            data = file.read(MAX_JWKS_BYTES + 1)
        if len(data) > MAX_JWKS_BYTES:
            raise JwksError("the JWKS is larger than 1 MiB")
        return json.loads(data)

    async def _fetch(self) -> object:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.source, headers={"accept": "application/json"}) as response,
        ):
            if response.status != 200:
                raise JwksError(f"HTTP {response.status}")
            data = await response.content.read(MAX_JWKS_BYTES + 1)
            if len(data) > MAX_JWKS_BYTES:
                raise JwksError("the JWKS is larger than 1 MiB")
            return json.loads(data)
